"""eportal-patch-source: download patchsets from an upstream source (HTTP or a folder), deploy and roll them back."""
from setuptools import setup

setup(
    name="eportal-patch-source",
    version="0.1.0",
    description="eportal plugin: the patch source (HTTP upstream or a folder of archives), its console, job and CLI",
    license="GPL-2.0-or-later",
    python_requires=">=3.11",
    packages=["eportal_patch_source"],
    package_data={"eportal_patch_source": ["templates/*.pt"]},
    zip_safe=False,
    # HTTP goes through the standard library (urllib with ProxyHandler): no dependency beyond the core's
    install_requires=["eportal-core", "click>=8.1"],
    entry_points={"eportal": ["patch_source = eportal_patch_source"]},
)
