"""Task service and scheduler: commands on the task board, and automatic assignment."""

from loomkin.tasks.scheduler import Scheduler, SchedulerStatistics
from loomkin.tasks.service import (
    DependencySpec,
    Handoff,
    NegotiationGate,
    TaskService,
    Worker,
    WorkerRef,
)

__all__ = [
    "DependencySpec",
    "Handoff",
    "NegotiationGate",
    "Scheduler",
    "SchedulerStatistics",
    "TaskService",
    "Worker",
    "WorkerRef",
]
