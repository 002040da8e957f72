"""eportal-core: the Pyramid core of eportal (models, hookspecs, console, CLI)."""
from setuptools import find_packages, setup

setup(
    name="eportal-core",
    version="0.1.0",
    description="On-premises console that serves live kernel patches to fleets of Linux servers",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="GPL-2.0-or-later",
    python_requires=">=3.11",
    package_dir={"": "src"},
    packages=find_packages("src"),
    include_package_data=True,
    zip_safe=False,
    install_requires=[
        "pyramid>=2.0,<3",
        "pyramid_chameleon>=0.3",
        "pyramid_tm>=2.5",
        "pluggy>=1.3,<2",
        "SQLAlchemy>=2.0,<3",
        "zope.sqlalchemy>=3.0",
        "transaction>=4.0",
        "alembic>=1.12",
        "waitress>=3.0",
        "ldap3>=2.9",
        "APScheduler>=3.10,<4",
        "click>=8.1",
        "Chameleon>=4.0",
        "argon2-cffi>=23.1",
        "psycopg[binary]>=3.1",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "WebTest>=3.0",
            "playwright>=1.40",
            "hypothesis>=6.90",
            "ruff>=0.5",
            "jsonschema>=4",
        ],
    },
    entry_points={
        "paste.app_factory": ["main = eportal_core:main"],
        "console_scripts": [
            "eportal = eportal_core.cli:main",
            "kc.eportal = eportal_core.cli.kc:main",
            "eportal-sim = eportal_sim.cli:main",
        ],
    },
)
