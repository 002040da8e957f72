"""eportal-memdir: the example auth plugin of docs/plugins.md (an in-memory directory)."""
from setuptools import setup

setup(
    name="eportal-memdir",
    version="0.1.0",
    description="Example eportal auth plugin: users of an in-memory directory log in to the console",
    license="GPL-2.0-or-later",
    python_requires=">=3.11",
    packages=["eportal_memdir"],
    zip_safe=False,
    install_requires=["eportal-core"],
    entry_points={"eportal": ["memdir = eportal_memdir"]},
)
