"""Every deployed function target, so one source archive deploys them all.

Cloud Functions loads this file and calls the entry point named in Terraform
(the `entry_point` of each function in shared/topology.json).
"""

from functions.assistant import assistant
from functions.conversations_writer import conversations_writer
from functions.events import events
from functions.health import health
from functions.leadgen_fetcher import leadgen_fetcher
from functions.leads import leads
from functions.leads_writer import leads_writer
from functions.obras_writer import obras_writer
from functions.pipeline_writer import pipeline_writer
from functions.reply_sender import reply_sender
from functions.whatsapp import whatsapp

__all__ = [
    "assistant",
    "conversations_writer",
    "events",
    "health",
    "leadgen_fetcher",
    "leads",
    "leads_writer",
    "obras_writer",
    "pipeline_writer",
    "reply_sender",
    "whatsapp",
]
