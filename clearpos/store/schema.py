"""Versioned schema migrations, portable between SQLite and PostgreSQL.

Each migration is a list of statements in the common subset of both dialects
(TEXT timestamps in UTC ISO-8601, INTEGER money in fen, 0/1 booleans). The
``schema_version`` table records what has been applied. A statement only one
backend needs (SQLite cannot drop a column's UNIQUE, PostgreSQL can) is an
:class:`Only`.
"""

from __future__ import annotations


class Only(str):
    """A migration statement run by one backend only (``"sqlite"`` or ``"postgresql"``).

    >>> Only("postgresql", "DROP INDEX x").dialect
    'postgresql'
    """

    dialect: str

    def __new__(cls, dialect: str, stmt: str) -> Only:
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"no such backend: {dialect!r}")
        self = super().__new__(cls, stmt)
        self.dialect = dialect
        return self


#: The journal as migration 1 made it.
_JOURNAL_V1 = """CREATE TABLE journal (
                id INTEGER PRIMARY KEY,
                ts TEXT NOT NULL,
                business_date TEXT NOT NULL,
                tid TEXT NOT NULL,
                mid TEXT NOT NULL,
                batch TEXT NOT NULL,
                stan TEXT NOT NULL,
                mti TEXT NOT NULL,
                kind TEXT NOT NULL,
                amount_fen BIGINT,
                card_id BIGINT,
                pan_masked TEXT NOT NULL DEFAULT '',
                organisation TEXT NOT NULL DEFAULT '   ',
                code TEXT NOT NULL DEFAULT '',
                reason TEXT NOT NULL,
                facts TEXT NOT NULL DEFAULT '{}',
                auth_code TEXT NOT NULL DEFAULT '',
                status TEXT NOT NULL,
                delta_fen BIGINT NOT NULL DEFAULT 0,
                hold_fen BIGINT NOT NULL DEFAULT 0,
                original_id BIGINT,
                req_key TEXT UNIQUE,
                settlement_id BIGINT,
                entry_mode TEXT NOT NULL DEFAULT '',
                software TEXT NOT NULL DEFAULT '',
                processing INTEGER NOT NULL DEFAULT 0,
                latency_us BIGINT NOT NULL DEFAULT 0,
                trail TEXT NOT NULL DEFAULT '')"""

#: The journal as migration 7 leaves it: migration 1's, without the UNIQUE of
#: ``req_key`` (SQLite drops it by copying the table; ``journal_request`` holds it).
_JOURNAL_V7 = _JOURNAL_V1.replace("CREATE TABLE journal (", "CREATE TABLE journal_v7 (", 1).replace(
    "req_key TEXT UNIQUE,", "req_key TEXT,", 1
)
assert _JOURNAL_V7.count("journal_v7") == 1 and "UNIQUE" not in _JOURNAL_V7

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "host: merchants, terminals, cards, journal, settlements, maintenance, audit",
        [
            """CREATE TABLE meta (
                key TEXT PRIMARY KEY,
                value TEXT NOT NULL)""",
            """CREATE TABLE merchants (
                mid TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                status TEXT NOT NULL,
                suspension_cause TEXT NOT NULL DEFAULT '',
                arrears_fen BIGINT NOT NULL DEFAULT 0,
                single_limit_fen BIGINT NOT NULL DEFAULT 0,
                restricted_types TEXT NOT NULL DEFAULT '[]',
                status_since TEXT NOT NULL,
                status_by TEXT NOT NULL DEFAULT 'world',
                status_why TEXT NOT NULL DEFAULT '')""",
            """CREATE TABLE terminals (
                tid TEXT PRIMARY KEY,
                mid TEXT NOT NULL REFERENCES merchants(mid),
                tmk_sealed TEXT NOT NULL,
                tmk_kcv TEXT NOT NULL,
                status TEXT NOT NULL,
                min_software TEXT NOT NULL DEFAULT '000000',
                batch TEXT NOT NULL DEFAULT '000001',
                pik_sealed TEXT,
                mak_sealed TEXT,
                keys_issued_at TEXT,
                notice_seen BIGINT NOT NULL DEFAULT 0,
                last_seen TEXT,
                last_software TEXT,
                operators TEXT NOT NULL DEFAULT '[]',
                replaced_by TEXT,
                status_since TEXT NOT NULL,
                status_by TEXT NOT NULL DEFAULT 'world',
                status_why TEXT NOT NULL DEFAULT '')""",
            """CREATE TABLE cards (
                id INTEGER PRIMARY KEY,
                pan_token TEXT NOT NULL UNIQUE,
                pan_masked TEXT NOT NULL,
                expiry TEXT NOT NULL,
                pvv TEXT NOT NULL,
                status TEXT NOT NULL,
                organisation TEXT NOT NULL,
                balance_fen BIGINT NOT NULL,
                opening_fen BIGINT NOT NULL,
                holds_fen BIGINT NOT NULL DEFAULT 0,
                daily_limit_fen BIGINT NOT NULL DEFAULT 0,
                daily_used_fen BIGINT NOT NULL DEFAULT 0,
                daily_date TEXT NOT NULL DEFAULT '',
                wrong_pin INTEGER NOT NULL DEFAULT 0,
                pin_locked INTEGER NOT NULL DEFAULT 0,
                velocity_until TEXT NOT NULL DEFAULT '',
                status_since TEXT NOT NULL,
                status_by TEXT NOT NULL DEFAULT 'world',
                status_why TEXT NOT NULL DEFAULT '')""",
            _JOURNAL_V1,
            "CREATE INDEX journal_card_ts ON journal(card_id, ts)",
            "CREATE INDEX journal_tid_batch ON journal(tid, batch, stan)",
            "CREATE INDEX journal_mid_ts ON journal(mid, ts)",
            "CREATE INDEX journal_reason_ts ON journal(reason, ts)",
            """CREATE TABLE settlements (
                id INTEGER PRIMARY KEY,
                ts TEXT NOT NULL,
                tid TEXT NOT NULL,
                mid TEXT NOT NULL,
                batch TEXT NOT NULL,
                term_debit_fen BIGINT NOT NULL,
                term_debit_count INTEGER NOT NULL,
                term_credit_fen BIGINT NOT NULL,
                term_credit_count INTEGER NOT NULL,
                host_debit_fen BIGINT NOT NULL,
                host_debit_count INTEGER NOT NULL,
                host_credit_fen BIGINT NOT NULL,
                host_credit_count INTEGER NOT NULL,
                check_code INTEGER NOT NULL,
                status TEXT NOT NULL,
                uploaded INTEGER NOT NULL DEFAULT 0,
                closed_at TEXT)""",
            "CREATE INDEX settlements_tid_batch ON settlements(tid, batch)",
            """CREATE TABLE batch_uploads (
                id INTEGER PRIMARY KEY,
                settlement_id BIGINT NOT NULL,
                stan TEXT NOT NULL,
                pan_masked TEXT NOT NULL,
                amount_fen BIGINT NOT NULL,
                kind TEXT NOT NULL,
                journal_id BIGINT)""",
            """CREATE TABLE maintenance (
                id INTEGER PRIMARY KEY,
                who TEXT NOT NULL,
                start_at TEXT NOT NULL,
                end_at TEXT NOT NULL,
                notice_zh TEXT NOT NULL,
                notice_en TEXT NOT NULL,
                created_by TEXT NOT NULL DEFAULT 'world',
                created_at TEXT NOT NULL,
                cancelled INTEGER NOT NULL DEFAULT 0)""",
            """CREATE TABLE audit (
                id INTEGER PRIMARY KEY,
                ts TEXT NOT NULL,
                actor TEXT NOT NULL,
                entity TEXT NOT NULL,
                entity_id TEXT NOT NULL,
                action TEXT NOT NULL,
                from_state TEXT NOT NULL DEFAULT '',
                to_state TEXT NOT NULL DEFAULT '',
                reason TEXT NOT NULL DEFAULT '',
                detail TEXT NOT NULL DEFAULT '{}')""",
            "CREATE INDEX audit_entity ON audit(entity, entity_id, ts)",
        ],
    ),
    (
        2,
        "operations: arrears ledger, resumption requests, tickets, console users",
        [
            # No REFERENCES here: `clearpos host --reset` wipes the host tables it knows.
            # Fees and fines owed to the provider, and payments against them (停机 / 复机);
            # merchants.arrears_fen stays the running balance the host reads.
            """CREATE TABLE arrears_ledger (
                id INTEGER PRIMARY KEY,
                mid TEXT NOT NULL,
                ts TEXT NOT NULL,
                kind TEXT NOT NULL,
                amount_fen BIGINT NOT NULL,
                balance_fen BIGINT NOT NULL,
                voucher TEXT NOT NULL DEFAULT '',
                actor TEXT NOT NULL,
                note TEXT NOT NULL DEFAULT '')""",
            "CREATE INDEX arrears_ledger_mid ON arrears_ledger(mid, ts)",
            """CREATE TABLE resumption_requests (
                id INTEGER PRIMARY KEY,
                mid TEXT NOT NULL,
                requested_at TEXT NOT NULL,
                requested_by TEXT NOT NULL,
                note TEXT NOT NULL DEFAULT '',
                status TEXT NOT NULL,
                decided_at TEXT,
                decided_by TEXT,
                decision_why TEXT NOT NULL DEFAULT '')""",
            "CREATE INDEX resumption_requests_mid ON resumption_requests(mid, status)",
            """CREATE TABLE tickets (
                id INTEGER PRIMARY KEY,
                opened_at TEXT NOT NULL,
                opened_by TEXT NOT NULL,
                subject TEXT NOT NULL,
                tid TEXT NOT NULL DEFAULT '',
                mid TEXT NOT NULL DEFAULT '',
                rrn TEXT NOT NULL DEFAULT '',
                title TEXT NOT NULL,
                status TEXT NOT NULL,
                owner TEXT NOT NULL DEFAULT '',
                resolution TEXT NOT NULL DEFAULT '',
                updated_at TEXT NOT NULL,
                evidence TEXT NOT NULL DEFAULT '{}')""",
            "CREATE INDEX tickets_status ON tickets(status, updated_at)",
            "CREATE INDEX tickets_tid ON tickets(tid)",
            "CREATE INDEX tickets_mid ON tickets(mid)",
            """CREATE TABLE ticket_comments (
                id INTEGER PRIMARY KEY,
                ticket_id BIGINT NOT NULL,
                ts TEXT NOT NULL,
                author TEXT NOT NULL,
                body TEXT NOT NULL)""",
            "CREATE INDEX ticket_comments_ticket ON ticket_comments(ticket_id, ts)",
            """CREATE TABLE users (
                id INTEGER PRIMARY KEY,
                username TEXT NOT NULL UNIQUE,
                role TEXT NOT NULL,
                password_hash TEXT NOT NULL,
                created_at TEXT NOT NULL,
                created_by TEXT NOT NULL,
                disabled INTEGER NOT NULL DEFAULT 0)""",
            "CREATE INDEX journal_tid_ts ON journal(tid, ts)",
        ],
    ),
    (
        3,
        "journal: index the follow-ups of a transaction (refunds, reversals, voids)",
        [
            # Partial: purchases, most of the journal, have no original and cost no
            # extra B-tree insert. Without it, a refund scanned the whole journal.
            "CREATE INDEX journal_original ON journal(original_id) WHERE original_id IS NOT NULL",
        ],
    ),
    (
        4,
        "journal: index the time, for the dashboard, reports, exports and newest-first lists",
        [
            # ts only grows, so each insert appends at the right edge of this B-tree.
            # Lists of "the newest rows of X" order by (ts, id) so that the (X, ts)
            # indexes serve them without sorting all of X's rows.
            "CREATE INDEX journal_ts ON journal(ts)",
        ],
    ),
    (
        5,
        "chip cards: per-card chip data and last ATC, CA public keys, chip parameters per AID",
        [
            # A terminal that reads chips (swiped chip cards are declined 45 there), and
            # the generation of CA keys / chip parameters it last downloaded completely:
            # while these differ from meta emv.capk_gen / emv.aid_gen, its sign-on
            # answer carries processing requirement 4 / 5.
            "ALTER TABLE terminals ADD COLUMN chip INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE terminals ADD COLUMN capk_loaded TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE terminals ADD COLUMN aid_loaded TEXT NOT NULL DEFAULT ''",
            # One row per chip card: what personalisation wrote (PSN, CVN, service
            # code) and the highest ATC the issuer accepted (-1: none yet), for replays.
            """CREATE TABLE card_chips (
                card_id BIGINT PRIMARY KEY,
                psn TEXT NOT NULL,
                cvn TEXT NOT NULL,
                service_code TEXT NOT NULL,
                last_atc INTEGER NOT NULL DEFAULT -1,
                atc_at TEXT NOT NULL DEFAULT '')""",
            """CREATE TABLE emv_capks (
                rid TEXT NOT NULL,
                idx TEXT NOT NULL,
                modulus TEXT NOT NULL,
                exponent TEXT NOT NULL,
                expiry TEXT NOT NULL,
                check_value TEXT NOT NULL,
                PRIMARY KEY (rid, idx))""",
            """CREATE TABLE emv_aids (
                aid TEXT PRIMARY KEY,
                app_version TEXT NOT NULL,
                floor_limit_fen BIGINT NOT NULL,
                contactless_limit_fen BIGINT NOT NULL,
                contactless_cvm_limit_fen BIGINT NOT NULL,
                tac_default TEXT NOT NULL,
                tac_online TEXT NOT NULL,
                tac_denial TEXT NOT NULL)""",
        ],
    ),
    (
        6,
        "stock terminals: key schemes and TDK, previous keys until proven, dialect, status upload",
        [
            # 60.3 of the last sign-on (001 / 003 / 004) and the track data key of 004
            "ALTER TABLE terminals ADD COLUMN key_scheme TEXT NOT NULL DEFAULT '003'",
            "ALTER TABLE terminals ADD COLUMN tdk_sealed TEXT",
            # The last keys the terminal proved it holds (a MAC under them), kept valid
            # beside newer unproven ones until prev_until: a sign-on by someone who knows
            # only the TID cannot take the real terminal off the host (docs/security.md).
            "ALTER TABLE terminals ADD COLUMN keys_proven INTEGER NOT NULL DEFAULT 0",
            # sign-ons in a row whose keys were never used (the rate limit counts these)
            "ALTER TABLE terminals ADD COLUMN unproven_signons INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE terminals ADD COLUMN prev_pik_sealed TEXT",
            "ALTER TABLE terminals ADD COLUMN prev_mak_sealed TEXT",
            "ALTER TABLE terminals ADD COLUMN prev_tdk_sealed TEXT",
            "ALTER TABLE terminals ADD COLUMN prev_until TEXT",
            # "cup": a stock Q/CUP terminal; "clearpos": also the [ext] parameter records
            "ALTER TABLE terminals ADD COLUMN dialect TEXT NOT NULL DEFAULT 'cup'",
            # the last 0820 362 status upload, as the terminal sent it (hex of field 62)
            "ALTER TABLE terminals ADD COLUMN status_records TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE terminals ADD COLUMN status_uploaded_at TEXT",
        ],
    ),
    (
        7,
        "journal: one unique index for (TID, batch, STAN); the reason index for declines only",
        [
            # Two B-trees held the same key on every purchase: req_key's UNIQUE
            # ("TID:batch:STAN") and journal_tid_batch (tid, batch, stan). One partial
            # UNIQUE index over the financial rows (those with a req_key) now holds it
            # and serves the duplicate check, originals, batch totals and settlement.
            # SQLite drops a column's UNIQUE only by copying the table.
            Only("sqlite", _JOURNAL_V7),
            Only("sqlite", "INSERT INTO journal_v7 SELECT * FROM journal"),
            Only("sqlite", "DROP TABLE journal"),
            Only("sqlite", "ALTER TABLE journal_v7 RENAME TO journal"),
            Only("sqlite", "CREATE INDEX journal_card_ts ON journal(card_id, ts)"),
            Only("sqlite", "CREATE INDEX journal_mid_ts ON journal(mid, ts)"),
            Only("sqlite", "CREATE INDEX journal_tid_ts ON journal(tid, ts)"),
            Only(
                "sqlite",
                "CREATE INDEX journal_original ON journal(original_id) WHERE original_id IS NOT NULL",
            ),
            Only("sqlite", "CREATE INDEX journal_ts ON journal(ts)"),
            Only("postgresql", "ALTER TABLE journal DROP CONSTRAINT journal_req_key_key"),
            Only("postgresql", "DROP INDEX journal_tid_batch"),
            Only("postgresql", "DROP INDEX journal_reason_ts"),
            "CREATE UNIQUE INDEX journal_request ON journal(tid, batch, stan) "
            "WHERE req_key IS NOT NULL",
            # Searches by reason look for declines; approved rows, most of the
            # journal, no longer add an entry (a query by a decline reason says
            # "reason <> 'approved'" too, so that both planners may use this index).
            "CREATE INDEX journal_reason_ts ON journal(reason, ts) WHERE reason <> 'approved'",
        ],
    ),
]

LATEST = MIGRATIONS[-1][0]
