"""The compliance console's page on one agent action: its whole chain, from the member's message to the access
change. It reads support and agents data, so it lives here (the governance app sits below them); it uses the
compliance console's frame, access rule and reason, and its reading is recorded like any page of the trail."""

import json

from django.http import Http404
from django.shortcuts import render

from governance.compliance_views import REASON_KEY, compliance_required, reason_required
from governance.models import AuditRead
from governance.services import audit_read_record
from support.selectors import agent_action_chain


@compliance_required
@reason_required
def agent_action(request, proposal_id: int):
    chain = agent_action_chain(proposal_id=proposal_id)
    if chain is None:
        raise Http404("No such agent action.")
    audit_read_record(
        user=request.user,
        what=AuditRead.What.CHAIN,
        reason=request.session[REASON_KEY],
        target=f"proposal {proposal_id}",
        remote_addr=request.META.get("REMOTE_ADDR"),
    )
    chain.arguments_json = json.dumps(chain.proposal.arguments, sort_keys=True)
    return render(request, "support/compliance/chain.html", {"chain": chain, "section": "trail"})
