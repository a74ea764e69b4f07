"""The development dataset's Harbour practice, built with factories (for tests that need committed data)."""

from types import SimpleNamespace

from tests.factories import CalendarAccessFactory, CalendarFactory, MembershipFactory, OrganizationFactory, UserFactory


def _member(org, username, first, last, role):
    user = UserFactory(username=username, first_name=first, last_name=last)
    MembershipFactory(user=user, organization=org, role=role)
    return user


def harbour() -> SimpleNamespace:
    org = OrganizationFactory(name="Harbour Dental Practice")
    w = SimpleNamespace(org=org)
    w.anna = _member(org, "anna", "Anna", "Novak", "practitioner")
    w.ben = _member(org, "ben", "Ben", "Okafor", "practitioner")
    w.tom = _member(org, "tom", "Tom", "Fisher", "secretary")
    w.tomas = _member(org, "tomas", "Tomas", "Reyes", "assistant")
    w.lea = _member(org, "lea", "Léa", "Girard", "secretary")
    w.novak_main = CalendarFactory(organization=org, owner=w.anna, name="Dr Novak appointments")
    w.novak_surgery = CalendarFactory(organization=org, owner=w.anna, name="Dr Novak surgery")
    w.okafor_main = CalendarFactory(organization=org, owner=w.ben, name="Dr Okafor appointments")
    CalendarAccessFactory(calendar=w.novak_main, user=w.tom, level="view", granted_by=w.anna)
    CalendarAccessFactory(calendar=w.okafor_main, user=w.lea, level="manage", granted_by=w.ben)
    other = OrganizationFactory(name="Northside Medical Centre")
    w.iris = _member(other, "iris", "Iris", "Walsh", "practitioner")
    w.sam = _member(other, "sam", "Sam", "Carter", "secretary")
    w.walsh_main = CalendarFactory(organization=other, owner=w.iris, name="Dr Walsh clinic")
    return w
