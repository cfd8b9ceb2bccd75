"""Embedded tasks (generators + gold judges) and, later, real-data adapters."""

from seq2seq_rm.tasks.base import Demonstration, Judgement, PreferencePair, Prompt, Task, TaskData
from seq2seq_rm.tasks.safety import SafetyTask
from seq2seq_rm.tasks.summarization import SummarizationTask

__all__ = ["Demonstration", "Judgement", "PreferencePair", "Prompt", "SafetyTask", "SummarizationTask",
           "Task", "TaskData"]
