"""The referral loop: the Task state machines, who may move a Task, and the ServiceRequest
following its referral Task."""

__all__ = ["loop_closing", "task_states"]
