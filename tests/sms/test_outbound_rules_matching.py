"""Outbound rules choose the routes of a message: every condition, strategy and priority, through
the service, through message_send and through the REST API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from freezegun import freeze_time

from core.errors import ApplicationError
from sms.models import HoursMode, Message, OutboundRule, RoutingStrategy, SmsConfiguration
from sms.outbound.rules import outbound_rule_save, routes_for_message, sms_caller_id_save
from sms.outbound.send import message_send
from tenants.models import AuditEvent, Extension, Role, SmsPermission, User
from tenants.services import extension_create, user_create
from tenants.services_groups import holiday_save, office_hours_save
from tests.factories import World, shared_trunk
from tests.sms.helpers import make_configuration
from tests.tasks import TaskRecorder
from trunks.models import Trunk

ClientFor = Callable[[User | None], Client]

RULES = "/api/v1/outbound-rules/"
MESSAGES = "/api/v1/messages/"
SENDER = "+12125550100"
CONTACT = "+13125550199"
FACTORY = "Factory configuration"
OWN = "Own trunk"
NEW_YORK = ZoneInfo("America/New_York")

# Tenant A's office is open on Mondays from 9 to 17 (New York); 30 November 2026 is a holiday.
MONDAY_MORNING = datetime(2026, 11, 23, 10, 0, tzinfo=NEW_YORK)
MONDAY_OPENING = datetime(2026, 11, 23, 9, 0, tzinfo=NEW_YORK)
MONDAY_CLOSING = datetime(2026, 11, 23, 17, 0, tzinfo=NEW_YORK)
MONDAY_EVENING = datetime(2026, 11, 23, 20, 0, tzinfo=NEW_YORK)
TUESDAY_MORNING = datetime(2026, 11, 24, 10, 0, tzinfo=NEW_YORK)
HOLIDAY_MORNING = datetime(2026, 11, 30, 10, 0, tzinfo=NEW_YORK)

DOORS = ["service", "send", "api"]


@pytest.fixture(autouse=True)
def _fresh_limits(fresh_limits: None) -> None:
    """Every test starts with no send counted and no request slot taken."""


def shared(did: str | None = None, **extra: Any) -> dict[str, Any]:
    """Return a route on the shared trunk, from `did` (digits) or from the sender's own DID."""
    return {"trunk": "shared", "caller_id": did or "", **extra}


def own(did: str, **extra: Any) -> dict[str, Any]:
    """Return a route on tenant A's own trunk, from `did` (digits) of its pool there."""
    return {"trunk": "own", "caller_id": did, **extra}


@dataclass
class Rules:
    """Tenant A with a configuration on each of its two trunks, office hours and a holiday."""

    world: World
    client_for: ClientFor
    capture: Callable[..., Any]
    published: TaskRecorder
    own_trunk: Trunk
    configurations: dict[int, str]
    users: dict[str, User] = field(default_factory=dict)

    @property
    def tenant(self) -> Any:
        return self.world.tenant_a

    def trunk(self, name: str) -> Trunk:
        return shared_trunk() if name == "shared" else self.own_trunk

    def add(self, door: str, name: str, routes: list[dict[str, Any]], **fields: Any) -> None:
        """Save an outbound rule through the service, or through the API for the API door."""
        if door != "api":
            outbound_rule_save(
                tenant=self.tenant,
                actor=None,
                name=name,
                routes=[{**route, "trunk": self.trunk(route["trunk"])} for route in routes],
                **fields,
            )
            return
        body = {
            "name": name,
            **fields,
            "routes": [{**route, "trunk": self.trunk(route["trunk"]).pk} for route in routes],
        }
        response = self.client_for(self.world.admin_a).post(
            RULES, body, content_type="application/json"
        )
        assert response.status_code == 201, response.content

    def sender(self, extension: str | None) -> User:
        """Return a user who may send from SENDER: the admin, or the user of that extension."""
        if extension is None:
            return self.world.admin_a
        if extension not in self.users:
            number = Extension.objects.for_tenant(self.tenant).filter(number=extension).first()
            if number is None:
                user = user_create(
                    username=f"ext-{extension}", password=None, role=Role.USER, tenant=self.tenant
                )
                number = extension_create(
                    tenant=self.tenant,
                    number=extension,
                    user=user,
                    sms_permission=SmsPermission.ALLOW,
                )
            assert number.user is not None, f"extension {extension} has no user"
            sms_caller_id_save(
                tenant=self.tenant, extension=number, trunk=shared_trunk(), did=SENDER
            )
            self.users[extension] = number.user
        return self.users[extension]

    def route(
        self,
        door: str,
        dialled: str,
        *,
        extension: str | None = None,
        at: datetime = MONDAY_MORNING,
    ) -> list[tuple[str, str, str]] | str:
        """Return (configuration, DID, destination) of each route chosen, or the refusal code."""
        user = self.sender(extension)
        try:
            if door == "service":
                routes = routes_for_message(
                    tenant=self.tenant,
                    did=SENDER,
                    dialled=dialled,
                    extension=getattr(user, "extension", None),
                    at=at,
                )
                return [(self.configurations[r.configuration_id], r.did, r.dst) for r in routes]
            with freeze_time(at), self.capture(execute=True):
                if door == "send":
                    message = message_send(
                        user=user, tenant=self.tenant, to=dialled, did=SENDER, body="Hello"
                    )[0]
                else:
                    response = self.client_for(user).post(
                        MESSAGES,
                        {"from": SENDER, "to": dialled, "body": "Hello"},
                        content_type="application/json",
                    )
                    if response.status_code != 202:
                        assert response.status_code == 400, response.content
                        return response.json()["code"]
                    message = Message.objects.get(pk=response.json()["id"])
        except ApplicationError as error:
            return error.code
        plan = [
            (self.configurations[step["configuration_id"]], step["did"], step["dst"])
            for step in message.route_plan
        ]
        # The message leaves through the first route of its plan, and its delivery is queued.
        assert (self.configurations[message.configuration_id], message.did) == plan[0][:2]
        assert self.published.ids("sms.deliver_message") == [message.pk]
        self.published.reset_mock()
        return plan


@pytest.fixture
def rules(
    world: World,
    client_for: ClientFor,
    django_capture_on_commit_callbacks: Callable[..., Any],
    published: TaskRecorder,
) -> Rules:
    own_trunk = world.objects_a[Trunk]
    second = make_configuration(world.tenant_a, name=OWN, trunk=own_trunk, username="own@a.example")
    office_hours_save(tenant=world.tenant_a, actor=None, weekday=0, start=time(9), end=time(17))
    holiday_save(
        tenant=world.tenant_a,
        actor=None,
        name="Closed",
        start_date=date(2026, 11, 30),
        end_date=date(2026, 11, 30),
    )
    factory = world.objects_a[SmsConfiguration]
    return Rules(
        world=world,
        client_for=client_for,
        capture=django_capture_on_commit_callbacks,
        published=published,
        own_trunk=own_trunk,
        configurations={factory.pk: FACTORY, second.pk: OWN},
    )


# --- conditions -------------------------------------------------------------------------------

MATCHED = [(FACTORY, "+12125550105", CONTACT)]
NO_RULE = "no_outbound_rule"

CONDITIONS = [
    # destination prefixes: the digits as dialled, before any normalisation
    pytest.param({"prefixes": "312"}, "3125550199", None, MONDAY_MORNING, MATCHED, id="prefix"),
    pytest.param(
        {"prefixes": "31"}, "3125550199", None, MONDAY_MORNING, MATCHED, id="prefix-short"
    ),
    pytest.param({"prefixes": "312"}, "13125550199", None, MONDAY_MORNING, NO_RULE, id="prefix-1"),
    pytest.param(
        {"prefixes": "646;1312"}, "13125550199", None, MONDAY_MORNING, MATCHED, id="prefix-list"
    ),
    pytest.param(
        {"prefixes": "1"}, "+1 (312) 555-0199", None, MONDAY_MORNING, MATCHED, id="prefix-format"
    ),
    pytest.param(
        {"prefixes": "646;718"}, "3125550199", None, MONDAY_MORNING, NO_RULE, id="prefix-none"
    ),
    # destination lengths: the count of digits as dialled
    pytest.param({"lengths": "10"}, "3125550199", None, MONDAY_MORNING, MATCHED, id="length-10"),
    pytest.param({"lengths": "10"}, "13125550199", None, MONDAY_MORNING, NO_RULE, id="length-11"),
    pytest.param(
        {"lengths": "11"}, "+1 312 555 0199", None, MONDAY_MORNING, MATCHED, id="length-format"
    ),
    pytest.param(
        {"lengths": "7;10;11"}, "13125550199", None, MONDAY_MORNING, MATCHED, id="length-list"
    ),
    pytest.param({"lengths": "7"}, "3125550199", None, MONDAY_MORNING, NO_RULE, id="length-none"),
    # every condition given must hold
    pytest.param(
        {"prefixes": "1", "lengths": "11"},
        "13125550199",
        None,
        MONDAY_MORNING,
        MATCHED,
        id="prefix-and-length",
    ),
    pytest.param(
        {"prefixes": "312", "lengths": "11"},
        "3125550199",
        None,
        MONDAY_MORNING,
        NO_RULE,
        id="prefix-not-length",
    ),
    pytest.param(
        {"prefixes": "312", "from_extensions": "101"},
        "3125550199",
        "102",
        MONDAY_MORNING,
        NO_RULE,
        id="prefix-not-extension",
    ),
    # from extensions: numbers, ranges and wildcards
    pytest.param({"from_extensions": "101"}, CONTACT, "101", MONDAY_MORNING, MATCHED, id="ext"),
    pytest.param(
        {"from_extensions": "101"}, CONTACT, "102", MONDAY_MORNING, NO_RULE, id="ext-other"
    ),
    pytest.param(
        {"from_extensions": "101"}, CONTACT, None, MONDAY_MORNING, NO_RULE, id="ext-no-extension"
    ),
    pytest.param(
        {"from_extensions": "100-199"}, CONTACT, "150", MONDAY_MORNING, MATCHED, id="ext-range"
    ),
    pytest.param(
        {"from_extensions": "100-199"}, CONTACT, "100", MONDAY_MORNING, MATCHED, id="ext-range-low"
    ),
    pytest.param(
        {"from_extensions": "100-199"}, CONTACT, "199", MONDAY_MORNING, MATCHED, id="ext-range-high"
    ),
    pytest.param(
        {"from_extensions": "100-199"}, CONTACT, "250", MONDAY_MORNING, NO_RULE, id="ext-above"
    ),
    pytest.param(
        {"from_extensions": "100-199"}, CONTACT, "99", MONDAY_MORNING, NO_RULE, id="ext-shorter"
    ),
    pytest.param(
        {"from_extensions": "100-199"}, CONTACT, "1000", MONDAY_MORNING, NO_RULE, id="ext-longer"
    ),
    pytest.param(
        {"from_extensions": "100-199;300"}, CONTACT, "300", MONDAY_MORNING, MATCHED, id="ext-list"
    ),
    pytest.param(
        {"from_extensions": "1*5"}, CONTACT, "125", MONDAY_MORNING, MATCHED, id="ext-wildcard"
    ),
    pytest.param(
        {"from_extensions": "1*5"}, CONTACT, "126", MONDAY_MORNING, NO_RULE, id="ext-wildcard-miss"
    ),
    # office hours (Mondays 9-17 in New York, and a holiday)
    pytest.param(
        {"lengths": "11", "hours": HoursMode.ALWAYS},
        CONTACT,
        None,
        MONDAY_EVENING,
        MATCHED,
        id="always-evening",
    ),
    pytest.param(
        {"lengths": "11", "hours": HoursMode.ALWAYS},
        CONTACT,
        None,
        HOLIDAY_MORNING,
        MATCHED,
        id="always-holiday",
    ),
    pytest.param(
        {"lengths": "11", "hours": HoursMode.OFFICE},
        CONTACT,
        None,
        MONDAY_MORNING,
        MATCHED,
        id="office-open",
    ),
    pytest.param(
        {"lengths": "11", "hours": HoursMode.OFFICE},
        CONTACT,
        None,
        MONDAY_OPENING,
        MATCHED,
        id="office-opening",
    ),
    pytest.param(
        {"lengths": "11", "hours": HoursMode.OFFICE},
        CONTACT,
        None,
        MONDAY_CLOSING,
        NO_RULE,
        id="office-closing",
    ),
    pytest.param(
        {"lengths": "11", "hours": HoursMode.OFFICE},
        CONTACT,
        None,
        TUESDAY_MORNING,
        NO_RULE,
        id="office-other-day",
    ),
    pytest.param(
        {"lengths": "11", "hours": HoursMode.OFFICE},
        CONTACT,
        None,
        HOLIDAY_MORNING,
        NO_RULE,
        id="office-holiday",
    ),
    pytest.param(
        {"lengths": "11", "hours": HoursMode.AFTER_HOURS},
        CONTACT,
        None,
        MONDAY_MORNING,
        NO_RULE,
        id="after-hours-open",
    ),
    pytest.param(
        {"lengths": "11", "hours": HoursMode.AFTER_HOURS},
        CONTACT,
        None,
        MONDAY_EVENING,
        MATCHED,
        id="after-hours-evening",
    ),
    pytest.param(
        {"lengths": "11", "hours": HoursMode.AFTER_HOURS},
        CONTACT,
        None,
        TUESDAY_MORNING,
        MATCHED,
        id="after-hours-other-day",
    ),
    pytest.param(
        {"lengths": "11", "hours": HoursMode.AFTER_HOURS},
        CONTACT,
        None,
        HOLIDAY_MORNING,
        MATCHED,
        id="after-hours-holiday",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize(("conditions", "dialled", "extension", "at", "expected"), CONDITIONS)
def test_a_rule_applies_only_when_each_of_its_conditions_holds(
    rules: Rules,
    door: str,
    conditions: dict[str, str],
    dialled: str,
    extension: str | None,
    at: datetime,
    expected: list[tuple[str, str, str]] | str,
) -> None:
    rules.add(door, "Under test", [shared("12125550105")], **conditions)

    assert rules.route(door, dialled, extension=extension, at=at) == expected


# --- priority and enabled ---------------------------------------------------------------------

# Each rule: (name, priority, enabled, conditions, DID of its one route on the shared trunk).
PRIORITIES = [
    pytest.param(
        [
            ("Late", 20, True, {"lengths": "11"}, "2125550102"),
            ("Early", 10, True, {"lengths": "11"}, "2125550101"),
        ],
        "+12125550101",
        id="lower-priority-number-wins",
    ),
    pytest.param(
        [
            ("Early", 10, True, {"lengths": "11"}, "2125550101"),
            ("Late", 20, True, {"lengths": "11"}, "2125550102"),
        ],
        "+12125550101",
        id="whatever-the-order-of-creation",
    ),
    pytest.param(
        [
            ("B", 10, True, {"lengths": "11"}, "2125550102"),
            ("A", 10, True, {"lengths": "11"}, "2125550101"),
        ],
        "+12125550101",
        id="a-tie-goes-by-name",
    ),
    pytest.param(
        [
            ("Early", 10, False, {"lengths": "11"}, "2125550101"),
            ("Late", 20, True, {"lengths": "11"}, "2125550102"),
        ],
        "+12125550102",
        id="a-disabled-rule-is-skipped",
    ),
    pytest.param(
        [
            ("Early", 10, True, {"prefixes": "646"}, "2125550101"),
            ("Late", 20, True, {"lengths": "11"}, "2125550102"),
        ],
        "+12125550102",
        id="the-first-matching-rule-wins",
    ),
    pytest.param(
        [
            ("Early", 10, False, {"lengths": "11"}, "2125550101"),
            ("Late", 20, True, {"prefixes": "646"}, "2125550102"),
        ],
        NO_RULE,
        id="a-disabled-rule-never-catches-what-others-miss",
    ),
    pytest.param(
        [("Only", 10, False, {"lengths": "11"}, "2125550101")],
        SENDER,
        id="with-every-rule-disabled-the-did-sends-through-its-trunk",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize(("saved", "expected"), PRIORITIES)
def test_the_first_enabled_matching_rule_by_priority_chooses_the_route(
    rules: Rules,
    door: str,
    saved: list[tuple[str, int, bool, dict[str, str], str]],
    expected: str,
) -> None:
    for name, priority, enabled, conditions, did in saved:
        rules.add(door, name, [shared(did)], priority=priority, enabled=enabled, **conditions)

    chosen = rules.route(door, CONTACT)

    assert chosen == (expected if expected == NO_RULE else [(FACTORY, expected, CONTACT)])


@pytest.mark.django_db
@pytest.mark.parametrize("door", DOORS)
def test_a_matching_rule_without_a_usable_route_refuses_instead_of_falling_through(
    rules: Rules, door: str
) -> None:
    # The sender's own DID is not in the pool of tenant A's own trunk, and the second route is off.
    rules.add(
        door,
        "Dead end",
        [{"trunk": "own", "caller_id": ""}, shared("2125550101", enabled=False)],
        priority=10,
        lengths="11",
    )
    rules.add(door, "Fallback", [shared("2125550102")], priority=20, lengths="11")

    assert rules.route(door, CONTACT) == "no_route"
    assert not Message.objects.exists()


# --- routing strategies -----------------------------------------------------------------------

THREE_ROUTES = [shared("2125550101"), own("6465550101"), shared("2125550102")]
IN_ORDER = [
    (FACTORY, "+12125550101", CONTACT),
    (OWN, "+16465550101", CONTACT),
    (FACTORY, "+12125550102", CONTACT),
]


@pytest.mark.django_db
@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        pytest.param(RoutingStrategy.PRIORITIZED, IN_ORDER, id="prioritized"),
        pytest.param(RoutingStrategy.RANDOM, IN_ORDER[::-1], id="random"),
    ],
)
def test_prioritized_keeps_the_routes_in_order_and_random_shuffles_them(
    rules: Rules,
    monkeypatch: pytest.MonkeyPatch,
    door: str,
    strategy: str,
    expected: list[tuple[str, str, str]],
) -> None:
    # A "shuffle" that reverses: a prioritized rule must not call it at all.
    monkeypatch.setattr("sms.outbound.rules.random.shuffle", lambda items: items.reverse())
    rules.add(door, "Three routes", THREE_ROUTES, lengths="11", strategy=strategy)

    assert rules.route(door, CONTACT) == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("strategy", "first_routes"),
    [
        (RoutingStrategy.PRIORITIZED, {"+12125550101"}),
        (RoutingStrategy.RANDOM, {"+12125550101", "+16465550101", "+12125550102"}),
    ],
)
def test_random_leads_with_every_route_in_turn_and_prioritized_always_with_the_first(
    rules: Rules, strategy: str, first_routes: set[str]
) -> None:
    rules.add("service", "Three routes", THREE_ROUTES, lengths="11", strategy=strategy)

    # Sixty draws miss one of three routes as first with a chance below 1e-10.
    plans = [rules.route("service", CONTACT) for _ in range(60)]

    assert {plan[0][1] for plan in plans} == first_routes
    assert all(sorted(plan) == sorted(IN_ORDER) for plan in plans)


@pytest.mark.django_db
@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("strategy", [RoutingStrategy.PRIORITIZED, RoutingStrategy.RANDOM])
def test_disabled_routes_are_left_out_whatever_the_strategy(
    rules: Rules, door: str, strategy: str
) -> None:
    routes = [
        shared("2125550101", enabled=False),
        own("6465550101"),
        shared("2125550102", enabled=False),
    ]
    rules.add(door, "Mostly off", routes, lengths="11", strategy=strategy)

    assert rules.route(door, CONTACT) == [(OWN, "+16465550101", CONTACT)]


# --- what a route does to the number ----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("route", "dialled", "expected"),
    [
        pytest.param(shared(), "3125550199", [(FACTORY, SENDER, CONTACT)], id="own-did"),
        pytest.param(own("6465550103"), CONTACT, [(OWN, "+16465550103", CONTACT)], id="caller-id"),
        pytest.param(
            shared(strip_digits=1), "13125550199", [(FACTORY, SENDER, CONTACT)], id="strip"
        ),
        pytest.param(shared(prepend="1"), "3125550199", [(FACTORY, SENDER, CONTACT)], id="prepend"),
        pytest.param(
            shared(strip_digits=3, prepend="1646"),
            "3125550199",
            [(FACTORY, SENDER, "+16465550199")],
            id="strip-and-prepend",
        ),
        pytest.param(shared(strip_digits=4), "3125550199", "no_route", id="strip-too-much"),
        pytest.param({"trunk": "own", "caller_id": ""}, CONTACT, "no_route", id="did-not-on-trunk"),
    ],
)
def test_a_route_sends_from_its_caller_id_to_the_number_stripped_and_prepended(
    rules: Rules, route: dict[str, Any], dialled: str, expected: list[tuple[str, str, str]] | str
) -> None:
    rules.add("service", "Rewrite", [route], lengths="10;11")

    assert rules.route("service", dialled) == expected


# --- tenants ----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("door", DOORS)
def test_another_tenants_rules_do_not_change_this_tenants_routes(rules: Rules, door: str) -> None:
    outbound_rule_save(
        tenant=rules.world.tenant_b,
        actor=None,
        name="B catches all",
        lengths="10;11",
        routes=[{"trunk": shared_trunk(), "caller_id": "12125550110"}],
    )

    assert rules.route(door, CONTACT) == [(FACTORY, SENDER, CONTACT)]


@pytest.mark.django_db
def test_a_rule_is_created_read_changed_and_deleted_through_the_api(
    rules: Rules, client_for: ClientFor
) -> None:
    client = client_for(rules.world.admin_a)
    rules.add("api", "Office", [own("6465550102"), shared()], lengths="11", hours="office")
    rule = OutboundRule.objects.get()
    url = f"{RULES}{rule.pk}/"

    listed = client.get(RULES).json()
    changed = client.patch(url, {"hours": "after_hours"}, content_type="application/json")
    after_change = rules.route("api", CONTACT, at=MONDAY_EVENING)
    deleted = client.delete(url)

    assert listed["count"] == 1
    assert [route["caller_id"] for route in listed["results"][0]["routes"]] == ["+16465550102", ""]
    assert [route["position"] for route in listed["results"][0]["routes"]] == [1, 2]
    assert changed.status_code == 200, changed.content
    assert after_change == [(OWN, "+16465550102", CONTACT), (FACTORY, SENDER, CONTACT)]
    assert deleted.status_code == 204
    assert not OutboundRule.objects.exists()
    actions = set(AuditEvent.objects.filter(object_type="sms.outboundrule").values_list("action"))
    assert actions == {("created",), ("changed",), ("deleted",)}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        pytest.param({"lengths": "11"}, "invalid", "trunk", id="trunk-of-tenant-b"),
        pytest.param(
            {"lengths": "11", "caller_id": "12125550110"},
            "did_not_in_pool",
            "caller_id",
            id="did-of-b",
        ),
        pytest.param({}, "condition_required", "prefixes", id="no-condition"),
        pytest.param({"prefixes": "+1"}, "invalid", "prefixes", id="prefix-not-digits"),
        pytest.param({"lengths": "21"}, "invalid", "lengths", id="length-too-long"),
        pytest.param({"from_extensions": "200-100"}, "invalid", "from_extensions", id="reversed"),
    ],
)
def test_a_rule_the_matching_could_not_use_is_refused_with_its_field(
    rules: Rules, client_for: ClientFor, body: dict[str, str], code: str, field: str
) -> None:
    trunk = rules.world.objects_b[Trunk] if field == "trunk" else shared_trunk()
    route = {"trunk": trunk.pk, "caller_id": body.pop("caller_id", "")}

    response = client_for(rules.world.admin_a).post(
        RULES, {"name": "Bad", **body, "routes": [route]}, content_type="application/json"
    )

    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["code"] == code
    if field == "trunk":
        # Refused by the serializer, which lists the errors of each route by its index.
        assert list(answer["errors"]["routes"]["0"]) == ["trunk"]
    else:
        assert answer["field"] == field
    assert not OutboundRule.objects.exists()


@pytest.mark.django_db
def test_another_tenants_rule_is_404_for_every_verb(rules: Rules, client_for: ClientFor) -> None:
    rules.add("service", "Mine", [shared()], lengths="11")
    rule = OutboundRule.objects.get()
    client = client_for(rules.world.admin_b)
    url = f"{RULES}{rule.pk}/"

    assert client.get(url).status_code == 404
    patched = client.patch(url, {"lengths": "10"}, content_type="application/json")
    assert patched.status_code == 404
    assert client.delete(url).status_code == 404
    assert client.get(RULES).json()["count"] == 0
    rule.refresh_from_db()
    assert rule.lengths == "11"
