from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []  # noqa: RUF012 - Django's migration shape
    operations = [  # noqa: RUF012
        migrations.CreateModel(
            name="Order",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ("reference", models.CharField(max_length=50, unique=True)),
                ("confirmed", models.BooleanField(default=False)),
                ("confirmations", models.IntegerField(default=0)),
            ],
        ),
    ]
