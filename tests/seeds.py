"""The three seed requests from the runbook this system replaces (README's curl examples)."""

LEAD = {"source": "manual", "name": "João Teste", "phone": "11999998888", "email": "joao@teste.com",
        "funnel": "end_client", "location": "São Paulo", "project_type": "residential"}

WHATSAPP = {"event": "messages.upsert",
            "data": {"key": {"remoteJid": "5511999998888@s.whatsapp.net", "fromMe": False, "id": "TEST123456"},
                     "pushName": "João Teste", "message": {"conversation": "Olá, gostaria de saber sobre pisos"},
                     "messageType": "conversation"}}


def stage_change(lead_id: str) -> dict[str, object]:
    return {"event_type": "stage_changed", "lead_id": lead_id,
            "payload": {"from_stage": "triagem", "to_stage": "qualificado",
                        "reason": "Lead respondeu ao primeiro contato"}}


EVENTS_AUTH = {"Authorization": "Bearer dev-events-key"}
