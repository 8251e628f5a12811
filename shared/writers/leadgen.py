"""Meta Lead Ads: complete a `leadgen_received` (ids only) into a lead.

The Graph API call is the one network call a writer makes, made before the ledger's
statement (which writes the lead as `lead_created` does, ct_lead_created); the ledger
asks first whether the event was processed, so a redelivered event is a `duplicate`
and not fetched again. If the call fails, the failure is recorded and Pub/Sub retries,
then dead-letters. A rejected page token is re-read once (rotation).
"""

from __future__ import annotations

from shared.envelope import Envelope
from shared.graph_api import GraphError, fetch_lead
from shared.log import get_logger
from shared.meta_leads import lead_from_graph
from shared.payloads import LeadgenReceived
from shared.secrets import get_store
from shared.tenants import get_directory
from shared.writers.calls import Call
from shared.writers.leads import lead_call

log = get_logger(__name__)


class LeadgenNotConfigured(LookupError):
    """The tenant has no Meta Lead Ads page token configured; retried, then dead-lettered."""


def page_token_secret(tenant_id: str) -> str:
    tenant = get_directory().get(tenant_id)
    settings = tenant.source("leads", "meta") if tenant is not None else None
    if settings is None or not settings.page_token_secret:
        raise LeadgenNotConfigured(f"tenant {tenant_id} has no leads/meta page token configured")
    return settings.page_token_secret


def fetch(leadgen_id: str, secret_name: str) -> dict[str, object]:
    store = get_store()
    try:
        return fetch_lead(leadgen_id, store.get(secret_name))
    except GraphError as exc:
        if not exc.token_rejected:
            raise
        return fetch_lead(leadgen_id, store.get(secret_name, refresh=True))


def apply_leadgen_received(envelope: Envelope, ref: LeadgenReceived) -> Call | None:
    data = fetch(ref.leadgen_id, page_token_secret(envelope.tenant))
    lead = lead_from_graph(data, ref)
    if lead is None:
        log.info("Meta test lead with dummy contact data; nothing to write", extra={"leadgen_id": ref.leadgen_id})
        return None
    # The lead is written in this event's statement, traced and timed as this event.
    return lead_call(lead)
