"""The audit trail as FHIR R4 `AuditEvent` resources in a `Bundle`, following IHE Basic Audit Log Patterns (BALP)
where they apply. Resources are built with the `fhir.resources` models (R4B: the AuditEvent elements that R4
requires are the same), so every exported resource is validated as it is made.

One AuditEvent per audit record:
- a change (auditlog): type `rest` (RESTful operation), subtype the interaction (create, update, delete) — or,
  for a proposal decision, Alfred's decision code (propose, confirm, approve, execute…) in Alfred's code system;
  action C/U/D (E for a decision); outcome 0 (success);
- a security event (a refused token, caller or access; a login or a failed one): type DICOM 110113 Security Alert
  (110114 User Authentication for logins), action E, outcome 4 (minor failure: refused, nothing changed), 0 for a
  successful login;
- a sensitive read (the compliance console): type `rest`, subtype `search-type` (a page of the trail) or `read`,
  action R (E for a search), outcome 0.
The agent who acted is the `requestor` (a person, by username); a calling service is a second agent (DICOM 110150
Application). The `source.observer` is this Alfred. The entity is the object changed (type:id and its name), and
the correlation id of the request or turn is an entity detail, so records of one turn can be tied together.
"""

from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle

AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
AGENT_TYPE = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
ALFRED_DECISION = "urn:alfred:audit:decision"  # Alfred's own codes: propose, confirm, approve, execute…
ALFRED_USER = "urn:alfred:user"

REST_ACTIONS = {
    "create": ("create", "C"),
    "update": ("update", "U"),
    "delete": ("delete", "D"),
    "access": ("read", "R"),
}
READ_SUBTYPES = {"trail": ("search-type", "E"), "export": ("search-type", "E")}


def audit_event(record, *, observer: str = "Alfred") -> AuditEvent:
    """The AuditEvent of one `AuditRecord` (see governance.models), validated."""
    data = {
        "resourceType": "AuditEvent",
        "id": record.uid.replace(":", "-"),
        "recorded": record.at.isoformat(),
        "source": {
            "observer": {"display": observer},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
        "agent": _agents(record),
    }
    data.update(_what_happened(record))
    entity = _entity(record)
    if entity:
        data["entity"] = [entity]
    return AuditEvent.model_validate(data)


def audit_bundle(records, *, observer: str = "Alfred") -> Bundle:
    """A `collection` Bundle of the records' AuditEvents."""
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": audit_event(record, observer=observer)} for record in records],
        }
    )


def _what_happened(record) -> dict:
    if record.kind == "security":
        login = record.action.startswith(("login", "oidc_login"))
        code, display = ("110114", "User Authentication") if login else ("110113", "Security Alert")
        return {
            "type": {"system": DICOM, "code": code, "display": display},
            "subtype": [{"system": ALFRED_DECISION, "code": record.action}],
            "action": "E",
            "outcome": "0" if record.action == "login" else "4",
            "outcomeDesc": record.summary[:1000],
        }
    rest = {"system": AUDIT_EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}
    if record.kind == "read":
        interaction, action = READ_SUBTYPES.get(record.action, ("read", "R"))
        return {"type": rest, "subtype": [{"system": RESTFUL, "code": interaction}], "action": action, "outcome": "0"}
    if record.action in REST_ACTIONS:
        interaction, action = REST_ACTIONS[record.action]
        return {"type": rest, "subtype": [{"system": RESTFUL, "code": interaction}], "action": action, "outcome": "0"}
    # A decision on a proposal (propose, confirm, approve, refuse, execute, executed, failed…), or a hand-off.
    failed = record.action in ("failed", "expire")
    return {
        "type": rest,
        "subtype": [{"system": ALFRED_DECISION, "code": record.action}],
        "action": "E",
        "outcome": "4" if failed else "0",
    }


def _agents(record) -> list[dict]:
    if record.actor_id:
        person = {
            "type": {"coding": [{"system": AGENT_TYPE, "code": "humanuser", "display": "human user"}]},
            "who": {
                "identifier": {"system": ALFRED_USER, "value": record.actor.username},
                "display": record.actor.display_name,
            },
            "requestor": True,
        }
    else:
        person = {"who": {"display": "Alfred (system)"}, "requestor": True}
    agents = [person]
    if record.service:
        agents.append(
            {
                "type": {"coding": [{"system": DICOM, "code": "110150", "display": "Application"}]},
                "who": {"display": record.service},
                "requestor": False,
            }
        )
    return agents


def _entity(record) -> dict | None:
    entity = {}
    if record.object_type or record.object_id:
        value = f"{record.object_type}:{record.object_id}" if record.object_type else record.object_id
        entity["what"] = {"identifier": {"value": value}, "display": record.summary[:500]}
        entity["type"] = {"system": ENTITY_TYPE, "code": "2", "display": "System Object"}
    if record.correlation_id:
        entity.setdefault("what", {"display": "request"})
        entity["detail"] = [{"type": "correlation-id", "valueString": record.correlation_id}]
    return entity or None
