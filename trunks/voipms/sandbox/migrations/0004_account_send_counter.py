import datetime as dt
from zoneinfo import ZoneInfo

from django.db import migrations, models
from django.utils import timezone

EASTERN = ZoneInfo("America/New_York")
SENT = 0


def count_todays_sends(apps, schema_editor):
    """Start each account's counter at what it has sent since midnight US Eastern."""
    account_model = apps.get_model("voipms_sandbox", "SandboxAccount")
    message_model = apps.get_model("voipms_sandbox", "SandboxMessage")
    today = timezone.now().astimezone(EASTERN).date()
    start = dt.datetime.combine(today, dt.time(), tzinfo=EASTERN)
    for account in account_model.objects.all():
        sent = message_model.objects.filter(
            account=account, type=SENT, created_at__gte=start
        ).count()
        account_model.objects.filter(pk=account.pk).update(sends_day=today, sends_today=sent)


class Migration(migrations.Migration):

    dependencies = [
        ("voipms_sandbox", "0003_account_tenant"),
    ]

    operations = [
        migrations.AddField(
            model_name="sandboxaccount",
            name="sends_day",
            field=models.DateField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="sandboxaccount",
            name="sends_today",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(count_todays_sends, migrations.RunPython.noop),
    ]
