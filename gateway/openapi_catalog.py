"""The public operations' names and descriptions, in one table a client generator can rely on.

Why a table at the gateway rather than `operation_id=` on each route: the public document is the
merge of four applications, and only the merge can check that every name is unique and that no
public operation goes undescribed. `gateway/openapi.py` applies the table to the merged document;
the OpenAPI test fails when a public operation has no entry here, so a new route must be named.

Each entry: operationId (camelCase, verb + noun), a summary, what the operation does, who may call
it, and the problem types (`urn:spp:problem:<slug>`, with status) it can answer beyond those every
operation can (listed in `COMMON_PROBLEMS`).
"""

from __future__ import annotations

from typing import NamedTuple


class Operation(NamedTuple):
    operation_id: str
    summary: str
    text: str
    roles: str
    problems: tuple[tuple[int, str], ...] = ()


# Who may call: the roles of design's access model, said once each.
ANYONE = ("Any authenticated role (city_admin, district_admin, school_admin, viewer, integrator); a caller "
          "bound to districts sees only the records of its districts.")
READER = ("Any authenticated role that may read the record's district: city-wide roles (city_admin, and a "
          "viewer or integrator registered without districts) everywhere, others in their own districts; "
          "otherwise 403.")
WRITER = ("city_admin anywhere; district_admin in its own districts. viewer, school_admin and integrator "
          "get 403 `role`.")
CITY_ADMIN = "city_admin only; every other role gets 403 `role`."
IMPORTER = ("city_admin, district_admin (rows of its own districts) and integrator (rows of the districts it "
            "was registered for); viewer and school_admin get 403 `role`.")
FIGURES = ("Any role that may read the district: city-wide roles everywhere, district-bound roles in their "
           "own districts; otherwise 403 `district-scope`.")
CITY_FIGURES = "A city-wide role (city_admin, or a viewer or integrator registered without districts)."
AUDITOR = ("City-wide roles (city_admin, or a viewer or integrator registered without districts) see every "
           "event; district_admin (and a viewer or integrator registered for districts) the events concerning "
           "its districts; school_admin gets 403 `role`.")
NO_TOKEN = "Anyone holding a registered client's id and secret; no bearer token."

FORBIDDEN_READ = ((403, "district-scope"),)
FORBIDDEN_WRITE = ((403, "role"), (403, "district-scope"))
STALE = ((412, "stale-etag"), (412, "precondition-failed"))
IDEMPOTENT = ((409, "idempotency-key-in-flight"), (422, "idempotency-key-reused"))
IMPORT_PROBLEMS = ((403, "role"), (422, "bad-file"), (422, "bad-encoding"), (409, "import-conflict"),
                   (413, "body-too-large"), *IDEMPOTENT)

COMMON_PROBLEMS: tuple[tuple[int, str, str], ...] = (
    (401, "missing-token", "no bearer token"),
    (401, "invalid-token", "a token this platform did not sign, or a revoked client's"),
    (401, "expired-token", "the token has expired"),
    (400, "invalid-header", "a header the platform reads is not printable ASCII"),
    (422, "validation", "a parameter or body field is invalid; `errors[]` names each field"),
    (429, "rate-limited", "over the caller's request budget, when the deployment sets one"),
    (503, "upstream-unavailable", "a service this request needs is down; retry after `Retry-After`"),
)


def _pairing_transition(verb: str, state: str) -> Operation:
    return Operation(f"{verb}Pairing", f"{verb.capitalize()} a pairing",
                     f"Moves the pairing to `{state}`; answers the pairing as it now is. Send `If-Match` with "
                     "the ETag you read: a stale one is 412.", WRITER,
                     ((404, "pairing-not-found"), *FORBIDDEN_WRITE, (409, "illegal-transition"), *STALE,
                      *IDEMPOTENT))


def _rotation_transition(verb: str, state: str) -> Operation:
    return Operation(f"{verb}Rotation", f"{verb.capitalize()} a rotation",
                     f"Moves the rotation to `{state}`; answers the rotation as it now is. Send `If-Match` "
                     "with the ETag you read: a stale one is 412.", WRITER,
                     ((404, "rotation-not-found"), *FORBIDDEN_WRITE, (409, "illegal-transition"),
                      (409, "rotation-overlap"), *STALE, *IDEMPOTENT))


def _import(kind: str, noun: str, what: str) -> Operation:
    return Operation(
        f"import{noun}", f"Bulk import {kind.replace('-', ' ')}",
        f"Imports {what} from an XLSX workbook (its first sheet; rows reported by the numbers Excel shows), "
        "a CSV file (UTF-8 with or without BOM, GB18030 or UTF-16) or a JSON array, with Chinese or English "
        "headers (`getImportTemplate` gives a file to fill). `mode=all_or_nothing` writes every row or none; "
        "`partial` writes the valid rows and reports the others. `dry_run=true` validates and writes nothing. "
        "A small file answers its report (200); a large one answers 202 with a `Location` of the import to "
        "poll (`getImport`).", IMPORTER, IMPORT_PROBLEMS)


OPERATIONS: dict[str, Operation] = {
    # Composed views (gateway)
    "GET /api/v1/districts/{code}/overview": Operation(
        "getDistrictOverview", "A district against the national bars",
        "The district's partnership, rotation, training and backbone-balance figures for an academic year "
        "and a day, in one answer. A part whose service is down is null and named in `degraded` (still "
        "200). `format=csv` or `xlsx` answers the same figures as a spreadsheet.", FIGURES,
        ((404, "district-not-found"), *FORBIDDEN_READ)),
    "GET /api/v1/districts/{code}/balance": Operation(
        "getDistrictBalance", "A district's backbone balance",
        "Backbone teachers per 100 students for every school of the district, per section, with the "
        "enrollment-weighted mean and coefficient of variation against the national bars.", FIGURES,
        ((404, "district-not-found"), *FORBIDDEN_READ, (503, "upstream-unavailable"))),
    "POST /api/v1/districts/{code}/balance/what-if": Operation(
        "simulateDistrictBalance", "The balance under proposed moves",
        "The district's backbone balance before and after a proposed set of staff moves. Nothing is "
        "stored, so no Idempotency-Key is needed.", FIGURES,
        ((404, "district-not-found"), *FORBIDDEN_READ, (422, "unknown-staff"), (422, "unknown-school"),
         (413, "body-too-large"))),
    "GET /api/v1/city/overview": Operation(
        "getCityOverview", "Every district against the national bars",
        "One row per district with the blocks of `getDistrictOverview`, and `degraded` for the services "
        "that could not be reached.", CITY_FIGURES, ((403, "district-scope"),)),
    "GET /api/v1/staff/{staff_id}/profile": Operation(
        "getStaffProfile", "A staff member's profile",
        "The staff record, every rotation of the person, the studios they host or belong to, and their "
        "training hours in the 5-year window up to `as_of`.", READER,
        ((404, "staff-not-found"), *FORBIDDEN_READ)),
    "GET /api/v1/schools/{code}/profile": Operation(
        "getSchoolProfile", "A school's profile",
        "The school, its pairings, the rotations into and out of it, and its staff and backbone counts per "
        "section on `as_of`.", READER, ((404, "school-not-found"), *FORBIDDEN_READ)),
    # Integration clients and tokens (gateway)
    "POST /api/v1/integration-clients": Operation(
        "createIntegrationClient", "Register an integration client",
        "Registers a government system as an OAuth 2 client with a role (`integrator` or `viewer`) and "
        "districts (none: city-wide). Answers 201 with `client_id` and `client_secret`; the secret is "
        "shown only in this answer.", CITY_ADMIN, ((403, "role"), (413, "body-too-large"))),
    "GET /api/v1/integration-clients": Operation(
        "listIntegrationClients", "List integration clients",
        "The registered clients, newest first, never their secrets.", CITY_ADMIN, ((403, "role"),)),
    "GET /api/v1/integration-clients/{client_id}": Operation(
        "getIntegrationClient", "Read an integration client", "One registered client, without its secret.",
        CITY_ADMIN, ((403, "role"), (404, "not-found"))),
    "DELETE /api/v1/integration-clients/{client_id}": Operation(
        "revokeIntegrationClient", "Revoke an integration client",
        "Revokes the client: it gets no new tokens and the tokens it holds stop working at once. Answers "
        "the client with `revoked_at` set.", CITY_ADMIN, ((403, "role"), (404, "not-found"))),
    "POST /api/v1/oauth/token": Operation(
        "issueToken", "Get a token (OAuth 2 client credentials)",
        "The client-credentials grant of RFC 6749 section 4.4: a form with `grant_type=client_credentials`, "
        "the client authenticated by HTTP Basic or by `client_id` and `client_secret` in the form. Answers "
        "`access_token`, `token_type` (`Bearer`) and `expires_in`; errors are the RFC's JSON errors "
        "(`invalid_client` 401, `unsupported_grant_type` and `invalid_request` 400), not problem details.",
        NO_TOKEN, ((413, "body-too-large"),)),
    # Partnership
    "POST /api/v1/districts": Operation(
        "createDistrict", "Register a district",
        "Registers a district by its administrative code; answers 201 with the district and its Location.",
        CITY_ADMIN, ((403, "role"), (409, "duplicate-district"), (413, "body-too-large"), *IDEMPOTENT)),
    "GET /api/v1/districts": Operation(
        "listDistricts", "List districts", "The districts you may read, by code.", ANYONE),
    "GET /api/v1/districts/{code}": Operation(
        "getDistrict", "Read a district", "One district, with its ETag; `If-None-Match` answers 304.",
        READER, ((404, "district-not-found"), *FORBIDDEN_READ)),
    "PATCH /api/v1/districts/{code}": Operation(
        "updateDistrict", "Rename a district",
        "Changes the fields sent; send `If-Match` with the ETag you read to avoid lost updates.", CITY_ADMIN,
        ((404, "district-not-found"), (403, "role"), *STALE, (413, "body-too-large"))),
    "POST /api/v1/schools": Operation(
        "createSchool", "Register a school",
        "Registers a school in a district with its stage, locality and enrollments; answers 201 with the "
        "school and its Location.", WRITER,
        (*FORBIDDEN_WRITE, (409, "duplicate-school"), (422, "unknown-district"), (413, "body-too-large"),
         *IDEMPOTENT)),
    "GET /api/v1/schools": Operation(
        "listSchools", "List schools",
        "Schools filtered by district, locality and stage, by code. `format=csv` or `xlsx` answers a "
        "spreadsheet.", ANYONE, FORBIDDEN_READ),
    "GET /api/v1/schools/{code}": Operation(
        "getSchool", "Read a school", "One school, with its ETag; `If-None-Match` answers 304.", READER,
        ((404, "school-not-found"), *FORBIDDEN_READ)),
    "PATCH /api/v1/schools/{code}": Operation(
        "updateSchool", "Correct a school",
        "Changes the fields sent (moving a school needs write access to both districts); send `If-Match` "
        "with the ETag you read.", WRITER,
        ((404, "school-not-found"), *FORBIDDEN_WRITE, (422, "unknown-district"), *STALE, (413, "body-too-large"))),
    "POST /api/v1/pairings": Operation(
        "createPairing", "Propose a pairing",
        "Pairs a lead school with a partner school for a program and dates; created `proposed`, 201 with "
        "Location.", WRITER,
        (*FORBIDDEN_WRITE, (409, "pairing-overlap"), (422, "same-school"), (422, "unknown-school"),
         (422, "dates-out-of-order"), (413, "body-too-large"), *IDEMPOTENT)),
    "GET /api/v1/pairings": Operation(
        "listPairings", "List pairings",
        "Pairings filtered by district (either school), school and status. `format=csv` or `xlsx` answers a "
        "spreadsheet.", ANYONE, FORBIDDEN_READ),
    "GET /api/v1/pairings/{pairing_id}": Operation(
        "getPairing", "Read a pairing", "One pairing, with its ETag; `If-None-Match` answers 304.", READER,
        ((404, "pairing-not-found"), *FORBIDDEN_READ)),
    "POST /api/v1/pairings/{pairing_id}/activate": _pairing_transition("activate", "active"),
    "POST /api/v1/pairings/{pairing_id}/suspend": _pairing_transition("suspend", "suspended"),
    "POST /api/v1/pairings/{pairing_id}/end": _pairing_transition("end", "ended"),
    "POST /api/v1/pairings/{pairing_id}/activities": Operation(
        "recordActivity", "Record a pairing activity",
        "Records an activity (lesson delivery, joint research, …) with its participants; only on an "
        "`active` pairing and dated within its dates. 201 with Location.", WRITER,
        ((404, "pairing-not-found"), *FORBIDDEN_WRITE, (409, "pairing-not-active"),
         (409, "activity-outside-pairing"), (413, "body-too-large"), *IDEMPOTENT)),
    "GET /api/v1/activities": Operation(
        "listActivities", "List activities",
        "Activities filtered by district, pairing, kind and date range. `format=csv` or `xlsx` answers a "
        "spreadsheet.", ANYONE, FORBIDDEN_READ),
    "GET /api/v1/changes": Operation(
        "listChanges", "Read a service's change feed",
        "The changes one service recorded after the cursor `after`, oldest first; `service` (required) "
        "names the service: `partnership`, `rotation` or `training`. Each change carries the actor and "
        "the request id that made it.", CITY_FIGURES, ((403, "role"), (404, "not-found"))),
    "GET /api/v1/audit-events": Operation(
        "listAuditEvents", "Read the audit trail",
        "Who changed what: every write of the platform, newest first across the services, with who "
        "(`actor`, `actor_role`), what (`entity`, `key`, `operation`, the changed fields `before` and "
        "`after`), when (`occurred_at`), the `request_id` and the `districts` it concerns. A bulk import is "
        "one event (`operation` `import`) with its counts and file in `details`; its rows' changes are in the "
        "change feed. Filters `actor`, `entity`, `key`, `since`, `until`, `service`; the cursor pages exactly "
        "across services; `format=csv` or `xlsx` answers a spreadsheet. Events are never changed or deleted.",
        AUDITOR, ((403, "role"), (422, "invalid-cursor"))),
    "GET /api/v1/imports/{import_id}": Operation(
        "getImport", "Read an import",
        "An import's progress and, when it is done, its per-row report.", IMPORTER,
        ((403, "role"), (404, "import-not-found"))),
    "GET /api/v1/imports/{kind}/template": Operation(
        "getImportTemplate", "Download an import template",
        "A file to fill for an import of `kind` (schools, staff, rotations, training-hours): `format=xlsx` "
        "(default) is a workbook whose first sheet has the Chinese headers and an example row, and whose "
        "second sheet, 说明, lists every column with its English name, whether it is required, its format "
        "and its allowed values with their Chinese labels; `format=csv` is the header and the example row, "
        "UTF-8 with BOM. `Content-Disposition` names the file in Chinese (RFC 5987 `filename*`).", ANYONE,
        ((404, "not-found"),)),
    "POST /api/v1/imports/schools": _import("schools", "Schools", "schools"),
    # Rotation
    "POST /api/v1/staff": Operation(
        "createStaff", "Register a staff member",
        "Registers a teacher or cadre at a home school; answers 201 with the `id` and Location.", WRITER,
        (*FORBIDDEN_WRITE, (409, "duplicate-staff-no"), (422, "unknown-school"), (413, "body-too-large"),
         *IDEMPOTENT)),
    "GET /api/v1/staff": Operation(
        "listStaff", "List staff",
        "Staff filtered by district, home school, status and eligibility for rotation in an academic year. "
        "`format=csv` or `xlsx` answers a spreadsheet.", ANYONE, FORBIDDEN_READ),
    "GET /api/v1/staff/{staff_id}": Operation(
        "getStaff", "Read a staff member", "One staff member, with its ETag; `If-None-Match` answers 304.",
        READER, ((404, "staff-not-found"), *FORBIDDEN_READ)),
    "PATCH /api/v1/staff/{staff_id}": Operation(
        "updateStaff", "Correct a staff member",
        "Changes the fields sent; send `If-Match` with the ETag you read.", WRITER,
        ((404, "staff-not-found"), *FORBIDDEN_WRITE, (422, "unknown-school"), *STALE,
         (413, "body-too-large"))),
    "GET /api/v1/rotation-policies/{district_code}": Operation(
        "getRotationPolicy", "Read a district's rotation policy",
        "The district's rotation policy; a district that never set one gets the defaults.", READER,
        FORBIDDEN_READ),
    "PUT /api/v1/rotation-policies/{district_code}": Operation(
        "putRotationPolicy", "Set a district's rotation policy",
        "Replaces the whole policy (an omitted field takes its default); send `If-Match` with the ETag you "
        "read.", WRITER, (*FORBIDDEN_WRITE, (422, "unknown-district"), *STALE, (413, "body-too-large"))),
    "POST /api/v1/rotations": Operation(
        "createRotation", "Plan a rotation",
        "Plans a staff member's rotation from their home school to another school; created `planned`, 201 "
        "with Location.", WRITER,
        ((404, "staff-not-found"), *FORBIDDEN_WRITE, (409, "rotation-overlap"), (409, "staff-inactive"),
         (422, "same-school"), (422, "unknown-school"), (422, "dates-out-of-order"),
         (413, "body-too-large"), *IDEMPOTENT)),
    "GET /api/v1/rotations": Operation(
        "listRotations", "List rotations",
        "Rotations filtered by district (from or to school), staff member, status and academic year. "
        "`format=csv` or `xlsx` answers a spreadsheet.", ANYONE, FORBIDDEN_READ),
    "GET /api/v1/rotations/{rotation_id}": Operation(
        "getRotation", "Read a rotation", "One rotation, with its ETag; `If-None-Match` answers 304.", READER,
        ((404, "rotation-not-found"), *FORBIDDEN_READ)),
    "PATCH /api/v1/rotations/{rotation_id}": Operation(
        "updateRotation", "Change a planned rotation",
        "Changes the fields sent while the rotation is not yet under way; send `If-Match` with the ETag "
        "you read.", WRITER,
        ((404, "rotation-not-found"), *FORBIDDEN_WRITE, (409, "rotation-not-editable"),
         (409, "rotation-overlap"), *STALE, (413, "body-too-large"))),
    "GET /api/v1/rotations/{rotation_id}/history": Operation(
        "listRotationTransitions", "A rotation's history",
        "Every status change of the rotation, oldest first, with who made it and when.", READER,
        ((404, "rotation-not-found"), *FORBIDDEN_READ)),
    "POST /api/v1/rotations/{rotation_id}/approve": _rotation_transition("approve", "approved"),
    "POST /api/v1/rotations/{rotation_id}/activate": _rotation_transition("activate", "active"),
    "POST /api/v1/rotations/{rotation_id}/complete": _rotation_transition("complete", "completed"),
    "POST /api/v1/rotations/{rotation_id}/withdraw": _rotation_transition("withdraw", "withdrawn"),
    "POST /api/v1/rotation-plans": Operation(
        "createRotationPlan", "Open a rotation plan",
        "Opens a district's plan for an academic year: a batch of rotations approved together. 201 with "
        "Location.", WRITER,
        (*FORBIDDEN_WRITE, (409, "duplicate-plan"), (422, "unknown-district"), (413, "body-too-large"),
         *IDEMPOTENT)),
    "GET /api/v1/rotation-plans": Operation(
        "listRotationPlans", "List rotation plans", "Plans filtered by district and academic year.", ANYONE,
        FORBIDDEN_READ),
    "GET /api/v1/rotation-plans/{plan_id}": Operation(
        "getRotationPlan", "Read a rotation plan",
        "One plan with its rotations, with its ETag; `If-None-Match` answers 304.", READER,
        ((404, "plan-not-found"), *FORBIDDEN_READ)),
    "POST /api/v1/rotation-plans/{plan_id}/rotations": Operation(
        "addRotationToPlan", "Add a rotation to a plan",
        "Adds a planned rotation of the plan's district and academic year to the plan.", WRITER,
        ((404, "plan-not-found"), *FORBIDDEN_WRITE, (409, "plan-closed"), (409, "rotation-in-other-plan"),
         (409, "rotation-withdrawn"), (422, "unknown-rotation"), (409, "plan-district"),
         (409, "plan-academic-year"), (413, "body-too-large"), *IDEMPOTENT)),
    "POST /api/v1/rotation-plans/{plan_id}/approve": Operation(
        "approveRotationPlan", "Approve a rotation plan",
        "Approves every rotation of the plan at once, or none when any breaks a rule.", WRITER,
        ((404, "plan-not-found"), *FORBIDDEN_WRITE, (409, "plan-closed"), (409, "plan-empty"),
         (409, "plan-rules"), *IDEMPOTENT)),
    "POST /api/v1/districts/{code}/rotation-proposals": Operation(
        "createRotationProposal", "Propose rotations for a district",
        "Proposes who should rotate where so the district meets the rotation rate and backbone share bars "
        "and spreads its backbone teachers as evenly as it can; each move says why, and the answer gives "
        "the figures before and after. Nothing else is stored. 201 with the proposal, or 202 with Location "
        "for a large district, computed by a job.", WRITER,
        ((404, "district-not-found"), *FORBIDDEN_WRITE, (409, "include-not-movable"),
         (409, "proposal-infeasible"), (422, "unknown-reference"), (413, "body-too-large"), *IDEMPOTENT)),
    "GET /api/v1/districts/{code}/rotation-proposals/{proposal_id}": Operation(
        "getRotationProposal", "Read a rotation proposal",
        "One proposal: `running` while its job works, then `done` with its result or `failed` with why.",
        READER, ((404, "proposal-not-found"), *FORBIDDEN_READ)),
    "POST /api/v1/districts/{code}/rotation-proposals/{proposal_id}/plan": Operation(
        "createPlanFromProposal", "Turn a proposal into a rotation plan",
        "Creates a draft plan with one planned rotation per move of the proposal, in one transaction; the "
        "plan is then approved like any other. 201 with the plan and Location.", WRITER,
        ((404, "proposal-not-found"), *FORBIDDEN_WRITE, (409, "proposal-not-ready"), (409, "proposal-planned"),
         (409, "proposal-empty"), (409, "proposal-stale"), (409, "rotation-overlap"), (409, "duplicate-plan"),
         (413, "body-too-large"), *IDEMPOTENT)),
    "POST /api/v1/imports/staff": _import("staff", "Staff", "staff members"),
    "POST /api/v1/imports/rotations": _import("rotations", "Rotations", "rotations"),
    # Training
    "POST /api/v1/studios": Operation(
        "createStudio", "Open a studio",
        "Opens a famous-teacher studio hosted by a staff member; 201 with Location.", WRITER,
        (*FORBIDDEN_WRITE, (422, "unknown-staff"), (422, "invalid-capacity"), (422, "dates-out-of-order"),
         (413, "body-too-large"), *IDEMPOTENT)),
    "GET /api/v1/studios": Operation(
        "listStudios", "List studios", "Studios filtered by district and kind.", ANYONE, FORBIDDEN_READ),
    "GET /api/v1/studios/{studio_id}": Operation(
        "getStudio", "Read a studio", "One studio, with its ETag; `If-None-Match` answers 304.", READER,
        ((404, "studio-not-found"), *FORBIDDEN_READ)),
    "POST /api/v1/studios/{studio_id}/close": Operation(
        "closeStudio", "Close a studio",
        "Closes the studio: no new members or sessions. Send `If-Match` with the ETag you read.", WRITER,
        ((404, "studio-not-found"), *FORBIDDEN_WRITE, (409, "studio-closed"), *STALE, *IDEMPOTENT)),
    "POST /api/v1/studios/{studio_id}/members": Operation(
        "addStudioMember", "Add a studio member",
        "Adds a staff member to the studio from a date; 201 with Location.", WRITER,
        ((404, "studio-not-found"), *FORBIDDEN_WRITE, (409, "studio-full"), (409, "already-member"),
         (409, "host-not-member"), (409, "studio-closed"), (422, "unknown-staff"), (413, "body-too-large"),
         *IDEMPOTENT)),
    "GET /api/v1/studios/{studio_id}/members": Operation(
        "listStudioMembers", "List a studio's members",
        "The studio's members, past and present. `format=csv` or `xlsx` answers a spreadsheet.", READER,
        ((404, "studio-not-found"), *FORBIDDEN_READ)),
    "GET /api/v1/studios/{studio_id}/members/{staff_id}": Operation(
        "getStudioMember", "Read a studio membership", "One member's membership of the studio.", READER,
        ((404, "membership-not-found"), *FORBIDDEN_READ)),
    "POST /api/v1/studios/{studio_id}/members/{staff_id}/leave": Operation(
        "leaveStudio", "A member leaves a studio",
        "Ends the membership on a date.", WRITER,
        ((404, "membership-not-found"), *FORBIDDEN_WRITE, (422, "not-a-member"), (409, "left-before-joined"),
         (409, "attended-after-leaving"), (413, "body-too-large"), *IDEMPOTENT)),
    "POST /api/v1/studios/{studio_id}/sessions": Operation(
        "createStudioSession", "Schedule a studio session",
        "Schedules a session of the studio worth some hours (more than 0, at most 24); 201 with Location.",
        WRITER, ((404, "studio-not-found"), *FORBIDDEN_WRITE, (409, "studio-closed"), (422, "invalid-hours"),
                 (413, "body-too-large"), *IDEMPOTENT)),
    "GET /api/v1/studios/{studio_id}/sessions": Operation(
        "listStudioSessions", "List a studio's sessions", "The studio's sessions, by start time.", READER,
        ((404, "studio-not-found"), *FORBIDDEN_READ)),
    "GET /api/v1/sessions/{session_id}": Operation(
        "getSession", "Read a session", "One session, with its ETag; `If-None-Match` answers 304.", READER,
        ((404, "session-not-found"), *FORBIDDEN_READ)),
    "PATCH /api/v1/sessions/{session_id}": Operation(
        "updateSession", "Change a session",
        "Changes the fields sent; send `If-Match` with the ETag you read.", WRITER,
        ((404, "session-not-found"), *FORBIDDEN_WRITE, (409, "studio-closed"), (422, "invalid-hours"),
         *STALE, (413, "body-too-large"))),
    "GET /api/v1/sessions/{session_id}/attendance": Operation(
        "getSessionAttendance", "Read a session's attendance",
        "The staff who attended the session, with its ETag.", READER,
        ((404, "session-not-found"), *FORBIDDEN_READ)),
    "PUT /api/v1/sessions/{session_id}/attendance": Operation(
        "putSessionAttendance", "Set a session's attendance",
        "Replaces the attendance list; each attendee is credited the session's hours once. Send `If-Match` "
        "with the ETag you read.", WRITER,
        ((404, "session-not-found"), *FORBIDDEN_WRITE, (409, "attendee-not-member"), *STALE,
         (413, "body-too-large"))),
    "POST /api/v1/training-hours": Operation(
        "createTrainingHours", "Credit training hours",
        "Credits a staff member with hours from a source and reference; the same (source, reference) again "
        "with the same figures answers the stored credit (200), with other figures 409.", WRITER,
        (*FORBIDDEN_WRITE, (409, "credit-mismatch"), (422, "unknown-staff"), (422, "reserved-source"),
         (422, "invalid-hours"), (413, "body-too-large"), *IDEMPOTENT)),
    "GET /api/v1/training-hours": Operation(
        "listTrainingHours", "List training-hour credits",
        "Credits filtered by staff member, source and dates.", ANYONE, FORBIDDEN_READ),
    "GET /api/v1/training-hours/summary": Operation(
        "getTrainingSummary", "A staff member's training hours",
        "The hours earned in the 5 years up to `as_of` (a credit counts when it was earned after the day "
        "5 years before and on or before `as_of`), by source, against the 360-hour bar.", READER,
        ((404, "staff-not-found"), *FORBIDDEN_READ)),
    "GET /api/v1/training-hours/{credit_id}": Operation(
        "getTrainingHours", "Read a training-hour credit",
        "One credit, with its ETag; `If-None-Match` answers 304.", READER,
        ((404, "credit-not-found"), *FORBIDDEN_READ)),
    "POST /api/v1/imports/training-hours": _import(
        "training-hours", "TrainingHours", "external training-hour credits, one per (source, reference)"),
}

TAGS: dict[str, str] = {
    "views": "Figures composed by the gateway across services: district and city overviews against the "
             "national bars, backbone balance and profiles.",
    "integration clients": "OAuth 2 clients for government systems, registered and revoked by a city "
                           "administrator.",
    "oauth": "The OAuth 2 client-credentials token endpoint.",
    "districts": "Districts (区县), registered by a city administrator.",
    "schools": "Schools with their stage, locality (urban, township, rural) and enrollments.",
    "pairings": "Hand-in-hand pairings (手拉手) of a lead school with a partner school, and their "
                "activities.",
    "activities": "Activities recorded on pairings, across pairings.",
    "changes": "Each service's change feed, for systems that mirror the platform's records.",
    "imports": "Bulk imports from XLSX, CSV or JSON files, their templates, and their reports.",
    "audit": "The audit trail: who changed what, when, in which request.",
    "staff": "Teachers and cadres, their home schools and backbone levels.",
    "rotation policies": "Each district's rotation rules and targets.",
    "rotations": "Teacher and cadre rotations (交流轮岗) between schools, and their status changes.",
    "rotation plans": "Batches of a district's rotations for an academic year, approved together.",
    "rotation proposals": "Proposed rotations that meet a district's bars, and the plans made of them.",
    "studios": "Famous-teacher studios (名师工作室), their members and sessions.",
    "sessions": "Studio sessions and their attendance, which credits training hours.",
    "training hours": "Training-hour credits and each staff member's progress to the 360-hour bar.",
}
