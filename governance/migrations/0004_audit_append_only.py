"""Seal the audit records written before the chain existed (in the order they were written), then make
every audit table append-only: a trigger refuses UPDATE and DELETE, whoever asks (TRUNCATE, a database
administrator's tool, is not a row change and stays possible)."""

from django.db import migrations

TABLES = ("auditlog_logentry", "governance_securityevent", "governance_auditseal")

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION alfred_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit records are append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
""" + "".join(
    f"CREATE TRIGGER alfred_audit_append_only BEFORE UPDATE OR DELETE ON {table} "
    "FOR EACH ROW EXECUTE FUNCTION alfred_audit_append_only();\n"
    for table in TABLES
)
REMOVE = "".join(f"DROP TRIGGER IF EXISTS alfred_audit_append_only ON {table};\n" for table in TABLES) + (
    "DROP FUNCTION IF EXISTS alfred_audit_append_only();"
)


def seal_existing(apps, schema_editor):
    from governance.audit_chain import FIELDS, GENESIS, record_hash, seal_hash

    seal_model = apps.get_model("governance", "AuditSeal")
    if seal_model.objects.exists():
        return
    records = [
        (row["timestamp"], "logentry", row)
        for row in apps.get_model("auditlog", "LogEntry").objects.values(*FIELDS["logentry"]).iterator()
    ] + [
        (row["created_at"], "securityevent", row)
        for row in apps.get_model("governance", "SecurityEvent").objects.values(*FIELDS["securityevent"]).iterator()
    ]
    records.sort(key=lambda item: (item[0], item[1], item[2]["id"]))
    previous, seals = GENESIS, []
    for seq, (_, kind, row) in enumerate(records, 1):
        content = record_hash(row)
        digest = seal_hash(seq=seq, kind=kind, record_id=row["id"], record=content, previous=previous)
        seals.append(
            seal_model(seq=seq, kind=kind, record_id=row["id"], record_hash=content, previous=previous, hash=digest)
        )
        previous = digest
    seal_model.objects.bulk_create(seals, batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("auditlog", "0017_add_actor_email"),
        ("governance", "0003_auditseal"),
    ]

    operations = [
        migrations.RunPython(seal_existing, migrations.RunPython.noop),
        migrations.RunSQL(APPEND_ONLY, REMOVE),
    ]
