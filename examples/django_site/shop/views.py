"""The view: an order and the task that confirms it, in one transaction."""

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

from shop.models import Order
from shop.tasks import confirm_order


def place_order(request: HttpRequest) -> HttpResponse:
    reference = request.POST["reference"]
    with transaction.atomic():
        Order.objects.create(reference=reference)
        result = confirm_order.enqueue(reference)  # commits (or rolls back) with the order
        if request.POST.get("fail") == "1":
            raise ValueError("the order is refused after its task was enqueued")
    return JsonResponse({"task": result.id}, status=201)
