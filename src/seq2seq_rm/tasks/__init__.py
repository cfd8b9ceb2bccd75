"""Embedded tasks (generators + gold judges) and real-data adapters (no gold judge)."""

from seq2seq_rm.tasks.base import Demonstration, Judgement, PreferencePair, Prompt, Task, TaskData
from seq2seq_rm.tasks.hh import HHTask
from seq2seq_rm.tasks.pku import PKUSafeRLHFTask
from seq2seq_rm.tasks.safety import SafetyTask
from seq2seq_rm.tasks.summarization import SummarizationTask
from seq2seq_rm.tasks.tldr import TLDRTask

__all__ = ["Demonstration", "HHTask", "Judgement", "PKUSafeRLHFTask", "PreferencePair", "Prompt", "SafetyTask",
           "SummarizationTask", "TLDRTask", "Task", "TaskData"]
