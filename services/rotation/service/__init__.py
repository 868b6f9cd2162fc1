"""Rotation rules, one module per aggregate: the staff registry (`staff`), district policies
(`policies`), the rotation workflow (`rotations`) and district plans (`plans`); and the figures
the gateway composes, with the §4.6 what-if (`figures`).

Routes call these functions; repositories own the SQL. Who may change what follows design.md §5,
scoped by district.
"""

from services.rotation.service.figures import (
    backbone_placement,
    backbone_what_if,
    balance_totals,
    rotation_stats,
    school_staff,
    staff_workplace,
)
from services.rotation.service.plans import (
    PlanView,
    add_to_plan,
    approve_plan,
    create_plan,
    get_plan,
    list_plans,
)
from services.rotation.service.policies import get_policy, put_policy
from services.rotation.service.rotations import (
    create_rotation,
    get_rotation,
    list_rotations,
    rotation_history,
    transition_rotation,
    update_rotation,
)
from services.rotation.service.staff import create_staff, get_staff, list_staff, staff_by_numbers, update_staff

__all__ = [
    "backbone_placement", "balance_totals", "backbone_what_if", "rotation_stats", "school_staff", "staff_workplace",
    "add_to_plan", "approve_plan", "create_plan", "create_rotation", "create_staff", "get_plan",
    "get_policy", "get_rotation", "get_staff", "list_plans", "list_rotations", "list_staff",
    "PlanView", "put_policy", "rotation_history", "staff_by_numbers", "transition_rotation",
    "update_rotation", "update_staff",
]
