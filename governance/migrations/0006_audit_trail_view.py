"""The whole audit trail in one read-only view (`AuditRecord`): changes, security events and sensitive reads,
each with its seal in the audit chain; and sensitive reads made append-only like the other audit tables."""

from django.db import migrations

VIEW = """
CREATE VIEW governance_auditrecord AS
SELECT 'change:' || e.id AS uid, 'change' AS kind, e.id::bigint AS record_id, s.seq, e.timestamp AS at,
       e.actor_id, COALESCE(e.additional_data->>'decision',
           CASE e.action WHEN 0 THEN 'create' WHEN 1 THEN 'update' WHEN 2 THEN 'delete' ELSE 'access' END) AS action,
       ct.app_label || '.' || ct.model AS object_type, e.object_pk AS object_id, e.object_repr AS summary,
       CASE WHEN e.additional_data->>'organization' ~ '^[0-9]{1,18}$'
            THEN (e.additional_data->>'organization')::bigint END AS organization_id,
       COALESCE(e.additional_data->>'service', '') AS service, COALESCE(e.cid, '') AS correlation_id
  FROM auditlog_logentry e
  JOIN django_content_type ct ON ct.id = e.content_type_id
  LEFT JOIN governance_auditseal s ON s.kind = 'logentry' AND s.record_id = e.id
UNION ALL
SELECT 'security:' || v.id, 'security', v.id, s.seq, v.created_at, v.user_id, v.kind, '', '',
       v.reason || CASE WHEN v.path <> '' THEN ' · ' || v.method || ' ' || v.path ELSE '' END, NULL,
       v.service, v.correlation_id
  FROM governance_securityevent v
  LEFT JOIN governance_auditseal s ON s.kind = 'securityevent' AND s.record_id = v.id
UNION ALL
SELECT 'read:' || r.id, 'read', r.id, s.seq, r.created_at, r.user_id, r.what, '', r.target, r.reason, NULL, '',
       r.correlation_id
  FROM governance_auditread r
  LEFT JOIN governance_auditseal s ON s.kind = 'auditread' AND s.record_id = r.id;
"""

APPEND_ONLY = (
    "CREATE TRIGGER alfred_audit_append_only BEFORE UPDATE OR DELETE ON governance_auditread "
    "FOR EACH ROW EXECUTE FUNCTION alfred_audit_append_only();"
)


class Migration(migrations.Migration):
    dependencies = [("governance", "0005_auditread")]

    operations = [
        migrations.RunSQL(VIEW, "DROP VIEW IF EXISTS governance_auditrecord;"),
        migrations.RunSQL(APPEND_ONLY, "DROP TRIGGER IF EXISTS alfred_audit_append_only ON governance_auditread;"),
    ]
