"""eportal-sim: a simulated fleet of KernelCare agents for eportal's end-to-end tests and bench/.

- :mod:`eportal_sim.fleet`: deterministic, realistic server info (``generate_fleet``) and the
  fleet state file (``save_state`` / ``load_state``).
- :mod:`eportal_sim.client`: a keep-alive HTTP/1.1 load client (``run_requests``) with a global
  rate limit, returning :class:`eportal_sim.stats.Stats`.
- :mod:`eportal_sim.scenarios`: the agent's calls (``register_fleet``, ``checkin_fleet``).
- :mod:`eportal_sim.cli`: the ``eportal-sim`` command.

Standard library only, so it runs anywhere a Python 3.11 does (the portal's venv, a bench box).
"""

__version__ = "0.1.0"
