"""eportal-hello: the example plugin the eportal README shows (a page, a navigation entry, a command)."""
from setuptools import setup

setup(
    name="eportal-hello",
    version="0.1.0",
    description="Example eportal plugin: a console page, a navigation entry and a CLI command",
    license="GPL-2.0-or-later",
    python_requires=">=3.11",
    packages=["eportal_hello"],
    package_data={"eportal_hello": ["templates/*.pt"]},
    zip_safe=False,
    install_requires=["eportal-core", "click>=8.1"],
    entry_points={"eportal": ["hello = eportal_hello"]},
)
