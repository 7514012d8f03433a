"""Communication: the instrumented communicator, its event log, and hand-written collectives."""
from ddlkit.comm.communicator import Communicator, Handle
from ddlkit.comm.events import EVENT_FIELDS, Event, Recorder
from ddlkit.comm.ring import chunk_sizes, ring_all_reduce

__all__ = ["Communicator", "Handle", "Event", "EVENT_FIELDS", "Recorder", "chunk_sizes",
           "ring_all_reduce"]
