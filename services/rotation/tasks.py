"""Rotation's jobs besides imports, run by the worker (services/common/jobs.py `SERVICE_TASK`)."""

from services.rotation.proposals.service import PROPOSAL_TASK, run_job

TASKS = {PROPOSAL_TASK: run_job}
