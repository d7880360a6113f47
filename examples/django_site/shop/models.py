from django.db import models


class Order(models.Model):
    reference = models.CharField(max_length=50, unique=True)
    confirmed = models.BooleanField(default=False)
    confirmations = models.IntegerField(default=0)
