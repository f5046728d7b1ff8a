"""Every transition of every lifecycle table, allowed and refused, against a real store.

For each (state, action) pair the table says allowed or not; the operation
must agree: an allowed one changes the row and writes exactly one audit row
with who, when and why; a refused one changes nothing and says what is
allowed from the current state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_ops_support import ARREARS_MID, KEK, MAIN_MID, add_user, seeded

from clearpos.diagnosis import tickets
from clearpos.keys import SecurityModule
from clearpos.money import fen_yuan, parse_yuan
from clearpos.ops import Refused, arrears, cards, maintenance, merchants, terminals, users
from clearpos.ops.lifecycle import Lifecycle
from clearpos.store import Database, Tx

HSM = SecurityModule(KEK)
NEW_TMK = bytes.fromhex("00112233445566778899AABBCCDDEE11")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    yield seeded(tmp_path)


def audit_count(tx: Tx) -> int:
    return int(tx.conn.execute("SELECT COUNT(*) AS n FROM audit").fetchone()["n"])


def last_audit(tx: Tx) -> Any:
    return tx.conn.execute("SELECT * FROM audit ORDER BY id DESC LIMIT 1").fetchone()


def check_transition(
    db: Database,
    table: Lifecycle,
    state: str,
    action: str,
    call: Callable[[Tx], Any],
    current: Callable[[Tx], str],
) -> None:
    allowed = action in table.allowed(state)
    with db.transaction() as tx:
        before = audit_count(tx)
    if allowed:
        with db.transaction() as tx:
            call(tx)
            expected = table.rules[action].target or state
            assert current(tx) == expected
            assert audit_count(tx) >= before + 1
            row = last_audit(tx)
            assert row["actor"] and row["ts"] and row["entity"]
    else:
        with pytest.raises(Refused) as info, db.transaction() as tx:
            call(tx)
        assert f"allowed from {state}" in str(info.value)
        assert info.value.allowed == table.allowed(state)
        assert info.value.state == state
        with db.reader() as tx:
            assert current(tx) == state
            assert audit_count(tx) == before  # nothing half-done


# --------------------------------------------------------------------------- merchants


def _merchant_state(db: Database, state: str) -> None:
    cols: dict[str, Any] = {
        "status": state,
        "suspension_cause": "risk" if state == "suspended" else "",
    }
    with db.transaction() as tx:
        tx.update_merchant(MAIN_MID, **cols)


MERCHANT_CALLS: dict[str, Callable[[Tx], Any]] = {
    "restrict": lambda tx: merchants.restrict(
        tx, MAIN_MID, ["refund"], by="ops", why="chargebacks"
    ),
    "lift": lambda tx: merchants.lift(tx, MAIN_MID, by="ops", why="reviewed"),
    "suspend": lambda tx: merchants.suspend(
        tx, MAIN_MID, "manual", by="ops", why="asked by the owner"
    ),
    "resume": lambda tx: merchants.resume(tx, MAIN_MID, by="ops", why="cleared"),
    "close": lambda tx: merchants.close(tx, MAIN_MID, by="ops", why="contract ended"),
    "set_limit": lambda tx: merchants.set_single_limit(tx, MAIN_MID, 100_00, by="ops", why="risk"),
}


@pytest.mark.parametrize("action", list(MERCHANT_CALLS))
@pytest.mark.parametrize("state", merchants.MERCHANT.states)
def test_merchant_transitions(db: Database, state: str, action: str) -> None:
    _merchant_state(db, state)

    def current(tx: Tx) -> str:
        m = tx.merchant(MAIN_MID)
        assert m is not None
        return m.status

    check_transition(db, merchants.MERCHANT, state, action, MERCHANT_CALLS[action], current)


def test_suspension_sets_what_the_host_reads(db: Database) -> None:
    with db.transaction() as tx:
        c = merchants.suspend(tx, MAIN_MID, "risk", by="li", why="unusual refunds")
    with db.reader() as tx:
        m = tx.merchant(MAIN_MID)
        assert m is not None
        assert (m.status, m.suspension_cause, m.status_by, m.status_why) == (
            "suspended",
            "risk",
            "li",
            "unusual refunds",
        )
        assert m.status_since == c.at
    assert (c.from_state, c.to_state) == ("active", "suspended(risk)")


def test_suspend_for_arrears_needs_something_owed(db: Database) -> None:
    with pytest.raises(Refused, match="owes nothing"), db.transaction() as tx:
        merchants.suspend(tx, MAIN_MID, "arrears", by="li", why="unpaid")
    with db.transaction() as tx:
        arrears.charge(tx, MAIN_MID, "fee", 58_00, by="li", why="service fee 2026-11")
        c = merchants.suspend(tx, MAIN_MID, "arrears", by="li", why="unpaid")
    assert c.detail["owed"] == "58.00"


def test_unknown_cause_and_types_refused(db: Database) -> None:
    with pytest.raises(Refused, match="cause"), db.transaction() as tx:
        merchants.suspend(tx, MAIN_MID, "weather", by="li", why="x")
    with pytest.raises(Refused, match="unknown: teleport"), db.transaction() as tx:
        merchants.restrict(tx, MAIN_MID, ["teleport"], by="li", why="x")
    with pytest.raises(Refused, match="--why"), db.transaction() as tx:
        merchants.suspend(tx, MAIN_MID, "risk", by="li", why=" ")
    with pytest.raises(Refused, match="--by"), db.transaction() as tx:
        merchants.suspend(tx, MAIN_MID, "risk", by="", why="x")
    with pytest.raises(Refused, match="no merchant"), db.transaction() as tx:
        merchants.suspend(tx, "000000000000000", "risk", by="li", why="x")


def test_add_merchant(db: Database) -> None:
    with db.transaction() as tx:
        merchants.add_merchant(
            tx, "898310048169999", "新店 New Shop", single_limit_fen=5000_00, by="li"
        )
        m = tx.merchant("898310048169999")
        assert m is not None and m.status == "active" and m.single_limit_fen == 5000_00
    with pytest.raises(Refused, match="already exists"), db.transaction() as tx:
        merchants.add_merchant(tx, "898310048169999", "again", by="li")
    with pytest.raises(Refused, match="15"), db.transaction() as tx:
        merchants.add_merchant(tx, "123", "short", by="li")


# --------------------------------------------------------------------------- arrears and resumption (D1, D5, D6)


def test_payment_rules(db: Database) -> None:
    with pytest.raises(Refused, match="voucher"), db.transaction() as tx:
        arrears.pay(tx, ARREARS_MID, 58_00, "", by="wang")
    with pytest.raises(Refused, match="more than"), db.transaction() as tx:
        arrears.pay(tx, ARREARS_MID, 60_00, "PAY-1", by="wang")
    with db.transaction() as tx:
        e, c = arrears.pay(tx, ARREARS_MID, 20_00, "PAY-1", by="wang", note="cash at branch")
        assert (e.amount_fen, e.balance_fen, e.voucher) == (20_00, 38_00, "PAY-1")
        assert c.action == "arrears.payment" and c.detail["owed"] == "38.00"
        m = tx.merchant(ARREARS_MID)
        assert m is not None and m.arrears_fen == 38_00  # the running balance the host reads
    with pytest.raises(Refused, match="already recorded"), db.transaction() as tx:
        arrears.pay(tx, ARREARS_MID, 10_00, "PAY-1", by="wang")
    with db.transaction() as tx:
        arrears.pay(tx, ARREARS_MID, 38_00, "PAY-2", by="wang")
    with pytest.raises(Refused, match="owes nothing"), db.transaction() as tx:
        arrears.pay(tx, ARREARS_MID, 1, "PAY-3", by="wang")
    with db.reader() as tx:
        assert [(e.kind, e.balance_fen) for e in arrears.ledger(tx, ARREARS_MID)] == [
            ("payment", 38_00),
            ("payment", 0),
        ]


def test_resumption_after_arrears_end_to_end(db: Database) -> None:
    add_user(db.url, "li", "supervisor")
    add_user(db.url, "zhao", "operator")
    # may not ask while something is owed
    with pytest.raises(Refused, match=r"still owes ¥58\.00"), db.transaction() as tx:
        arrears.request_resumption(tx, ARREARS_MID, by="wang")
    # resume directly is refused with the missing steps
    with pytest.raises(Refused, match="arrears pay") as info, db.transaction() as tx:
        merchants.resume(tx, ARREARS_MID, by="li", why="paid?")
    assert info.value.allowed == ("resume request", "arrears pay")
    with db.transaction() as tx:
        arrears.pay(tx, ARREARS_MID, 58_00, "PAY-0042", by="wang")
        req, _ = arrears.request_resumption(tx, ARREARS_MID, by="wang", note="voucher PAY-0042")
    with pytest.raises(Refused, match="already pending"), db.transaction() as tx:
        arrears.request_resumption(tx, ARREARS_MID, by="wang")
    # only a registered supervisor approves, and not the one who asked
    with pytest.raises(Refused, match="not a console user"), db.transaction() as tx:
        arrears.approve(tx, req.id, by="nobody")
    with pytest.raises(Refused, match="has the role operator"), db.transaction() as tx:
        arrears.approve(tx, req.id, by="zhao")
    with db.transaction() as tx:
        c = arrears.approve(tx, req.id, by="li", why="voucher checked")
    assert (c.from_state, c.to_state, c.detail["request"]) == (
        "suspended(arrears)",
        "active",
        req.id,
    )
    with db.reader() as tx:
        m = tx.merchant(ARREARS_MID)
        assert m is not None and (m.status, m.suspension_cause, m.status_by) == ("active", "", "li")
        actions = [
            r["action"]
            for r in tx.conn.execute(
                "SELECT action FROM audit WHERE entity = 'merchant' AND entity_id = ? ORDER BY id",
                (ARREARS_MID,),
            ).fetchall()
        ]
        assert actions == ["arrears.payment", "resumption.request", "resumption.approve", "resume"]
        (done,) = arrears.requests(tx, ARREARS_MID)
        assert (done.status, done.decided_by) == ("approved", "li")


def test_requester_cannot_approve_and_rejection_needs_reason(db: Database) -> None:
    add_user(db.url, "li", "supervisor")
    add_user(db.url, "chen", "admin")
    with db.transaction() as tx:
        arrears.pay(tx, ARREARS_MID, 58_00, "V1", by="li")
        req, _ = arrears.request_resumption(tx, ARREARS_MID, by="li")
    with pytest.raises(Refused, match="cannot also approve"), db.transaction() as tx:
        arrears.approve(tx, req.id, by="li")
    with pytest.raises(Refused, match="reason"), db.transaction() as tx:
        arrears.reject(tx, req.id, by="chen", why="")
    with db.transaction() as tx:
        arrears.reject(tx, req.id, by="chen", why="voucher is not readable")
        m = tx.merchant(ARREARS_MID)
        assert m is not None and m.status == "suspended"


def test_fee_after_request_blocks_approval(db: Database) -> None:
    add_user(db.url, "li", "supervisor")
    with db.transaction() as tx:
        arrears.pay(tx, ARREARS_MID, 58_00, "V1", by="wang")
        req, _ = arrears.request_resumption(tx, ARREARS_MID, by="wang")
        arrears.charge(tx, ARREARS_MID, "fine", 10_00, by="audit", why="late fine")
    with pytest.raises(Refused, match=r"owes ¥10\.00 again"), db.transaction() as tx:
        arrears.approve(tx, req.id, by="li")


def test_merchant_resume_approves_the_pending_request(db: Database) -> None:
    add_user(db.url, "li", "supervisor")
    with db.transaction() as tx:
        arrears.pay(tx, ARREARS_MID, 58_00, "V1", by="wang")
        arrears.request_resumption(tx, ARREARS_MID, by="wang")
        c = merchants.resume(tx, ARREARS_MID, by="li", why="paid in full")
    assert c.to_state == "active"


def test_request_only_for_arrears(db: Database) -> None:
    with (
        pytest.raises(Refused, match="only for a merchant suspended for arrears"),
        db.transaction() as tx,
    ):
        arrears.request_resumption(tx, MAIN_MID, by="wang")


@pytest.mark.parametrize("action", ["approve", "reject"])
@pytest.mark.parametrize("state", arrears.REQUEST.states)
def test_request_transitions(db: Database, state: str, action: str) -> None:
    add_user(db.url, "li", "supervisor")
    with db.transaction() as tx:
        arrears.pay(tx, ARREARS_MID, 58_00, "V1", by="wang")
        req, _ = arrears.request_resumption(tx, ARREARS_MID, by="wang")
        tx.conn.execute("UPDATE resumption_requests SET status = ? WHERE id = ?", (state, req.id))

    def call(tx: Tx) -> Any:
        if action == "approve":
            return arrears.approve(tx, req.id, by="li", why="ok")
        return arrears.reject(tx, req.id, by="li", why="no")

    def current(tx: Tx) -> str:
        return arrears.requests(tx, ARREARS_MID)[0].status

    check_transition(db, arrears.REQUEST, state, action, call, current)


# --------------------------------------------------------------------------- terminals


TERMINAL_CALLS: dict[str, Callable[[Tx], Any]] = {
    "suspend": lambda tx: terminals.suspend(tx, "10000001", by="li", why="screen broken"),
    "resume": lambda tx: terminals.resume(tx, "10000001", by="li", why="repaired"),
    "replace": lambda tx: terminals.replace(
        tx, HSM, "10000001", "10000099", NEW_TMK, by="li", why="spare device"
    ),
    "rotate_tmk": lambda tx: terminals.rotate_tmk(
        tx, HSM, "10000001", NEW_TMK, by="li", why="yearly rotation"
    ),
    "set_software": lambda tx: terminals.set_min_software(
        tx, "10000001", "000200", by="li", why="security fix"
    ),
}


@pytest.mark.parametrize("action", list(TERMINAL_CALLS))
@pytest.mark.parametrize("state", terminals.TERMINAL.states)
def test_terminal_transitions(db: Database, state: str, action: str) -> None:
    with db.transaction() as tx:
        tx.update_terminal("10000001", status=state)

    def current(tx: Tx) -> str:
        t = tx.terminal("10000001")
        assert t is not None
        return t.status

    check_transition(db, terminals.TERMINAL, state, action, TERMINAL_CALLS[action], current)


def test_replace_keeps_the_merchant_and_retires_the_old_tid(db: Database) -> None:
    with db.transaction() as tx:
        tx.update_terminal("10000001", pik_sealed="x", mak_sealed="y")
        old, new = terminals.replace(
            tx, HSM, "10000001", "10000099", NEW_TMK, by="li", why="spare device"
        )
    with db.reader() as tx:
        o, n = tx.terminal("10000001"), tx.terminal("10000099")
        assert o is not None and n is not None
        assert (o.status, o.replaced_by, o.signed_on) == ("replaced", "10000099", False)
        assert (n.status, n.mid, n.min_software) == ("active", o.mid, o.min_software)
        assert n.tmk_kcv == HSM.tmk_check_value("10000099", n.tmk_sealed)
    assert new.detail["replaces"] == "10000001" and old.detail["replaced_by"] == "10000099"
    with pytest.raises(Refused, match="already exists"), db.transaction() as tx:
        terminals.replace(tx, HSM, "10000007", "10000099", NEW_TMK, by="li", why="again")


def test_rotate_tmk_seals_new_key_and_clears_working_keys(db: Database) -> None:
    with db.transaction() as tx:
        tx.update_terminal("10000001", pik_sealed="x", mak_sealed="y", keys_issued_at="2026")
        before = tx.terminal("10000001")
        c = terminals.rotate_tmk(tx, HSM, "10000001", NEW_TMK, by="li", why="compromise suspected")
    with db.reader() as tx:
        t = tx.terminal("10000001")
        assert t is not None and before is not None
        assert not t.signed_on and t.keys_issued_at is None
        assert t.tmk_kcv != before.tmk_kcv and t.tmk_kcv == c.detail["new_kcv"]
        assert HSM.tmk_check_value("10000001", t.tmk_sealed) == t.tmk_kcv
    assert "00112233" not in str(c.to_dict())  # never the key itself
    with pytest.raises(Refused, match="already has a TMK"), db.transaction() as tx:
        terminals.rotate_tmk(tx, HSM, "10000001", NEW_TMK, by="li", why="again")


def test_another_kek_is_refused(db: Database) -> None:
    from clearpos.keys import KeyEncryptionKey

    other = SecurityModule(KeyEncryptionKey.generate())
    with pytest.raises(Refused, match="KEK"), db.transaction() as tx:
        terminals.rotate_tmk(tx, other, "10000001", NEW_TMK, by="li", why="x")
    with pytest.raises(Refused, match="KEK"), db.transaction() as tx:
        terminals.add_terminal(tx, other, "10000098", MAIN_MID, NEW_TMK, by="li")


def test_add_terminal_checks(db: Database) -> None:
    with pytest.raises(Refused, match="closed"), db.transaction() as tx:
        terminals.add_terminal(tx, HSM, "10000098", "898310048164003", NEW_TMK, by="li")
    with pytest.raises(Refused, match="8 letters"), db.transaction() as tx:
        terminals.add_terminal(tx, HSM, "123", MAIN_MID, NEW_TMK, by="li")
    with pytest.raises(Refused, match="application version"), db.transaction() as tx:
        terminals.add_terminal(tx, HSM, "10000098", MAIN_MID, NEW_TMK, by="li", min_software="1 0")


# --------------------------------------------------------------------------- cards

PAN_ID = 3  # the frozen card of the example world is id 3; the tests set any state


CARD_CALLS: dict[str, Callable[[Tx], Any]] = {
    a: (
        lambda action: (
            lambda tx: cards.move(
                tx, cards.find_card(tx, card_id=PAN_ID), action, by="bank", why="cardholder call"
            )
        )
    )(a)
    for a in cards.ACTIONS
}
CARD_CALLS["unlock_pin"] = lambda tx: cards.unlock_pin(
    tx, cards.find_card(tx, card_id=PAN_ID), by="bank", why="ID checked at branch"
)


@pytest.mark.parametrize("action", list(CARD_CALLS))
@pytest.mark.parametrize("state", cards.CARD.states)
def test_card_transitions(db: Database, state: str, action: str) -> None:
    with db.transaction() as tx:
        tx.update_card(PAN_ID, status=state, pin_locked=1, wrong_pin=3)

    def current(tx: Tx) -> str:
        c = tx.card(PAN_ID)
        assert c is not None
        return c.status

    check_transition(db, cards.CARD, state, action, CARD_CALLS[action], current)


def test_unlock_pin_clears_the_lock_and_refuses_an_unlocked_card(db: Database) -> None:
    with db.transaction() as tx:
        tx.update_card(PAN_ID, status="normal", pin_locked=1, wrong_pin=3)
        c = cards.unlock_pin(tx, cards.find_card(tx, card_id=PAN_ID), by="bank", why="ID checked")
        card = tx.card(PAN_ID)
        assert card is not None and (card.pin_locked, card.wrong_pin) == (False, 0)
    assert c.detail["pan"].count("*") >= 6
    with pytest.raises(Refused, match="not PIN-locked"), db.transaction() as tx:
        cards.unlock_pin(tx, cards.find_card(tx, card_id=PAN_ID), by="bank", why="again")


def test_find_card_by_pan_token(db: Database) -> None:
    from clearpos.keys.tokens import PanTokenizer

    with db.reader() as tx:
        c = cards.find_card(tx, token=PanTokenizer(KEK).token("6225880000001025"))
        assert c.pan_masked == "622588******1025" and c.status == "frozen"
        with pytest.raises(Refused, match="no card"):
            cards.find_card(tx, token=PanTokenizer(KEK).token("6225880000009999"))


# --------------------------------------------------------------------------- tickets


def _ticket(db: Database) -> int:
    with db.transaction() as tx:
        if users.get_user(tx, "zhao") is None:  # ticket owners are users
            users.add_user(tx, "zhao", "operator", "zhao-horse-battery", by="root")
        tk, _ = tickets.open_ticket(tx, "terminal says 停机", by="desk", tid="10000003")
    return tk.id


def test_ticket_owner_must_be_an_enabled_user(db: Database) -> None:
    tid = _ticket(db)
    with (
        pytest.raises(Refused, match=r"'nobody' is not a user.*one of: zhao"),
        db.transaction() as tx,
    ):
        tickets.assign(tx, tid, "nobody", by="desk")
    with pytest.raises(Refused, match="is not a user"), db.transaction() as tx:
        tickets.open_ticket(tx, "x", by="desk", tid="10000003", owner="ghost")
    with db.transaction() as tx:
        users.disable_user(tx, "zhao", by="root", why="left")
    with pytest.raises(Refused, match="'zhao' is disabled"), db.transaction() as tx:
        tickets.assign(tx, tid, "zhao", by="desk")
    with db.reader() as tx:
        assert tickets.get_ticket(tx, tid).owner == ""


@pytest.mark.parametrize("action", ["assign", "comment", "resolve", "close", "reopen"])
@pytest.mark.parametrize("state", tickets.TICKET.states)
def test_ticket_transitions(db: Database, state: str, action: str) -> None:
    tid = _ticket(db)
    with db.transaction() as tx:
        tx.conn.execute("UPDATE tickets SET status = ? WHERE id = ?", (state, tid))
    calls: dict[str, Callable[[Tx], Any]] = {
        "assign": lambda tx: tickets.assign(tx, tid, "zhao", by="desk"),
        "comment": lambda tx: tickets.comment(tx, tid, "called the merchant", by="zhao"),
        "resolve": lambda tx: tickets.resolve(tx, tid, "arrears paid, resumed", by="zhao"),
        "close": lambda tx: tickets.close(tx, tid, by="desk"),
        "reopen": lambda tx: tickets.reopen(tx, tid, by="desk", why="still declines"),
    }

    def current(tx: Tx) -> str:
        return tickets.get_ticket(tx, tid).status

    if action == "comment" and action in tickets.TICKET.allowed(state):
        with db.transaction() as tx:
            calls[action](tx)
            assert tickets.comments(tx, tid)[-1].body == "called the merchant"
        return
    check_transition(db, tickets.TICKET, state, action, calls[action], current)


def test_ticket_evidence_is_attached_and_masked(db: Database) -> None:
    with db.transaction() as tx:
        users.add_user(tx, "zhao", "operator", "zhao-horse-battery", by="root")
        tk, _c = tickets.open_ticket(
            tx, "card 6222021234567890123 declined", by="desk", tid="10000003", owner="zhao"
        )
        tickets.comment(tx, tk.id, "customer card 6225880000001124", by="zhao")
        notes = tickets.comments(tx, tk.id)
    assert tk.status == "in_progress" and tk.owner == "zhao" and tk.mid == ARREARS_MID
    assert "6222021234567890123" not in tk.title and "622202*********0123" in tk.title
    assert "6225880000001124" not in notes[0].body
    ev = tk.evidence
    assert ev["terminal"]["tid"] == "10000003" and ev["merchant"]["status"] == "suspended"
    assert set(ev["diagnosis"]) == {"zh", "en"}
    assert ev["diagnosis"]["en"]["fix"]["reason"] == "merchant.suspended.arrears"
    with pytest.raises(Refused, match="exactly one"), db.transaction() as tx:
        tickets.open_ticket(tx, "x", by="desk", tid="10000003", mid=MAIN_MID)


# --------------------------------------------------------------------------- users


def test_users_hash_verify_disable(db: Database) -> None:
    with db.transaction() as tx:
        u, _ = users.add_user(tx, "li", "supervisor", "long enough pw", by="root")
        stored = tx.conn.execute(
            "SELECT password_hash FROM users WHERE username = 'li'"
        ).fetchone()[0]
    assert stored.startswith("$argon2id$") and "long enough" not in stored
    assert u.role == "supervisor"
    with db.transaction() as tx:
        assert users.verify_password(tx, "li", "long enough pw") is not None
        assert users.verify_password(tx, "li", "wrong") is None
        assert users.verify_password(tx, "nobody", "long enough pw") is None
    with pytest.raises(Refused, match="already exists"), db.transaction() as tx:
        users.add_user(tx, "li", "admin", "another long pw", by="root")
    with pytest.raises(Refused, match="at least 8"), db.transaction() as tx:
        users.add_user(tx, "wu", "admin", "short", by="root")
    with pytest.raises(Refused, match="role"), db.transaction() as tx:
        users.add_user(tx, "wu", "king", "long enough pw", by="root")
    with db.transaction() as tx:
        users.disable_user(tx, "li", by="root", why="left the company")
        assert users.verify_password(tx, "li", "long enough pw") is None


# --------------------------------------------------------------------------- maintenance and money


def test_maintenance_schedule_checks(db: Database) -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    with pytest.raises(Refused, match="before it starts"), db.transaction() as tx:
        maintenance.schedule(
            tx, "host", now + timedelta(hours=2), now + timedelta(hours=1), "维护", "m", by="ops"
        )
    with pytest.raises(Refused, match="already over"), db.transaction() as tx:
        maintenance.schedule(
            tx, "host", now - timedelta(hours=2), now - timedelta(hours=1), "维护", "m", by="ops"
        )
    with pytest.raises(Refused, match="7 days"), db.transaction() as tx:
        maintenance.schedule(tx, "host", now, now + timedelta(days=8), "维护", "m", by="ops")
    with pytest.raises(Refused, match="field 62"), db.transaction() as tx:
        maintenance.schedule(
            tx,
            "host",
            now + timedelta(hours=1),
            now + timedelta(hours=2),
            "维" * 200,
            "m" * 100,
            by="ops",
        )
    with db.transaction() as tx:
        gen = tx.config_generation()
        w, _ = maintenance.schedule(
            tx, "issuer", now + timedelta(hours=1), now + timedelta(hours=2), "维护", "m", by="ops"
        )
        assert tx.config_generation() != gen  # running hosts reload
        moved, _ = maintenance.move(
            tx, w.id, now + timedelta(hours=3), now + timedelta(hours=4), by="ops", why="bank asked"
        )
        assert moved.id > w.id  # a fresh id: terminals are told again
        maintenance.cancel(tx, moved.id, by="ops", why="bank cancelled")
    with pytest.raises(Refused, match="already cancelled"), db.transaction() as tx:
        maintenance.cancel(tx, moved.id, by="ops", why="again")


@pytest.mark.parametrize(
    ("text", "fen"),
    [("58", 5800), ("58.0", 5800), ("58.00", 5800), ("0.01", 1), ("1234567.89", 123456789)],
)
def test_money_in_yuan(text: str, fen: int) -> None:
    assert parse_yuan(text, positive=True) == fen and parse_yuan(fen_yuan(fen)) == fen


@pytest.mark.parametrize("text", ["58.001", "-1", "1,000", "abc", "0", ""])
def test_money_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_yuan(text, positive=True)
