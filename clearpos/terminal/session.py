"""The session with the host: sign-on (and again by itself), sign-off, echo, parameters, status."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from clearpos.keys import KeyCheckError
from clearpos.wire import (
    NetCode,
    NetworkRequest,
    NetworkResponse,
    Param,
    ParameterDownload,
    ParameterDownloadResponse,
    ParamRecord,
    Request,
    SignOn,
    SignOnResponse,
    encode_params,
)

from . import store as st
from .chipdownload import KINDS, ChipDownload, ChipDownloadDone, ChipLoaded
from .client import LinkError, Unreachable
from .core import (
    TerminalCore,
    _Abort,
    _chip_download_extra,
)
from .screens import Outcome, note, reason_of, remedy_of, screen_of
from .store import now_text

__all__ = ["SessionMixin"]


class SessionMixin(TerminalCore):
    """The session with the host: sign-on (and again by itself), sign-off, echo, parameters, status."""

    def signon(self) -> Outcome:
        """POS sign-on (0800, 60.3 003) with the signed-in operator."""
        return self._run("signon", self._signon_command)

    def signoff(self) -> Outcome:
        """POS sign-off (0820, 60.3 002): the working keys are forgotten."""
        return self._run("signoff", self._signoff)

    def parameters(self) -> Outcome:
        """Parameter download (0800, 60.3 360): the standard records (timeout, redial,
        merchant name …) and, for the clearpos dialect, the [ext] notices."""
        return self._run("parameters", self._parameters_command)

    def download_chip(self) -> Outcome:
        """CA-key (0820 372, 0800 370 each, 371) and chip-parameter (0820 382, 0800 380
        each, 381) downloads, whatever the host's processing requirement says."""
        return self._run("download_chip", self._download_chip_command)

    def status_upload(self) -> Outcome:
        """Status upload (0820, 60.3 362): hardware states 01-05 and the parameters this
        terminal holds, as the public terminal code sends them."""
        return self._run("status", self._status_command)

    def echo(self) -> Outcome:
        """Echo test (0820, 60.3 301), after any pending reversal and offline upload."""
        return self._run("echo", self._echo)

    def _sign_on(self, operator: str) -> tuple[bool, str, str | None]:
        """0800 sign-on; returns (ok, reason key, field 39)."""
        stan = self.store.next_stan()
        msg = SignOn(
            tid=self.tid,
            mid=self.mid,
            stan=stan,
            batch=self.batch,
            operator=operator.ljust(3)[:3],
            # a stock terminal asks for keys with a track data key (004)
            netcode=NetCode.SIGN_ON_TDK if self.dialect == "cup" else NetCode.SIGN_ON,
        )
        try:
            reply = self._exchange(msg)
        except LinkError as exc:
            key = "network.unreachable" if isinstance(exc, Unreachable) else "network.timeout"
            self.store.journal_add(
                kind="signon",
                stan=stan,
                batch=self.batch,
                status=st.TIMEOUT,
                reason=key,
                operator=operator,
                detail=str(exc),
            )
            return False, key, None
        m = reply.msg
        if not isinstance(m, SignOnResponse):
            return False, "message.format_error", None
        code = m.code or ""
        key = reason_of(code, m.reason)
        record: dict[str, Any] = {
            "at": now_text(),
            "code": code,
            "reason": key,
            "software": self.software,
        }
        self._clock(m.host_date, m.host_time, reply.rtt)
        if code != "00":
            self.store.journal_add(
                kind="signon",
                stan=stan,
                batch=self.batch,
                status=st.DECLINED,
                reason=key,
                code=code,
                operator=operator,
            )
            self.store.put(last_signon=record)
            return False, key, code
        try:
            self.keys.accept_field62(m.keys or b"")
        except KeyCheckError as exc:
            self.keys.sign_off()
            self._save_keys(False, last_signon={**record, "reason": "terminal.key_check_failed"})
            self.store.journal_add(
                kind="signon",
                stan=stan,
                batch=self.batch,
                status=st.DECLINED,
                reason="terminal.key_check_failed",
                code=code,
                operator=operator,
                detail=str(exc),
            )
            return False, "terminal.key_check_failed", code
        self._save_keys(True, batch=m.batch, last_signon=record, last_operator=operator)
        self.store.journal_add(
            kind="signon",
            stan=stan,
            batch=m.batch,
            status=st.APPROVED,
            reason=key,
            code=code,
            operator=operator,
            host_date=m.host_date or "",
            host_time=m.host_time or "",
            detail="keys " + " ".join(f"{k}={v}" for k, v in self.keys.check_values().items()),
        )
        return True, key, code

    def _resign(self) -> bool:
        """Sign on again by itself (the host asked); True when it worked."""
        self._resigned = True
        operator = self.operator or self.store.get("last_operator") or "01"
        ok, _, _ = self._sign_on(str(operator))
        if ok and self.store.reversal() is not None:
            self._deliver_reversal()
        return ok

    def _clock(self, host_date: str | None, host_time: str | None, rtt: float) -> None:
        """Remember the skew between the host's clock (fields 13/12) and ours."""
        if not host_date or not host_time or len(host_date) != 4 or len(host_time) != 6:
            return
        now = datetime.now(self.tz)
        best: float | None = None
        for year in (now.year - 1, now.year, now.year + 1):
            try:
                host = datetime(
                    year,
                    int(host_date[:2]),
                    int(host_date[2:]),
                    int(host_time[:2]),
                    int(host_time[2:4]),
                    int(host_time[4:]),
                    tzinfo=self.tz,
                )
            except ValueError:
                continue
            skew = (now - timedelta(seconds=rtt / 2) - host).total_seconds()
            if best is None or abs(skew) < abs(best):
                best = skew
        if best is not None:
            self.store.put(clock_skew={"seconds": round(best, 1), "at": now_text()})

    def _download_parameters(self) -> dict[str, str] | None:
        """0800 60.3 360: store and return the notice, if the host sent one."""
        self._downloaded = True
        stan = self.store.next_stan()
        msg = ParameterDownload(tid=self.tid, mid=self.mid, stan=stan, batch=self.batch)
        try:
            reply = self._exchange(msg)
        except LinkError as exc:
            self.store.journal_add(
                kind="parameters",
                stan=stan,
                batch=self.batch,
                status=st.TIMEOUT,
                reason="network.timeout",
                detail=str(exc),
            )
            return None
        m = reply.msg
        if not isinstance(m, ParameterDownloadResponse) or m.code not in ("00", None):
            self.store.journal_add(
                kind="parameters",
                stan=stan,
                batch=self.batch,
                status=st.DECLINED,
                code=getattr(m, "code", "") or "",
            )
            return None
        self.store.put(
            parameters={r.tag: r.value for r in m.records if not r.ext},
            parameters_at=now_text(),
        )
        notice = {
            "text_zh": m.param(Param.NOTICE_ZH) or "",
            "text_en": m.param(Param.NOTICE_EN) or "",
            "start": m.param(Param.NOTICE_START) or "",
            "end": m.param(Param.NOTICE_END) or "",
        }
        updates: dict[str, Any] = {}
        host_name = m.param(Param.HOST_NAME)
        if host_name:
            updates["host_name"] = host_name
        self.store.journal_add(
            kind="parameters",
            stan=stan,
            batch=self.batch,
            status=st.APPROVED,
            code="00",
            detail=f"{len(m.records)} records",
        )
        if not any(notice.values()):
            if updates:
                self.store.put(**updates)
            return None
        notice["text"] = notice["text_" + self.lang] or notice["text_zh"]
        self.store.put(notice=notice, **updates)
        return notice

    def _download_chip(self, kinds: Sequence[str]) -> ChipDownloadDone:
        """Drive :class:`ChipDownload`: each answer journaled, each kind stored whole
        before its end message goes."""
        self._chip_downloaded = True
        proto = ChipDownload(
            kinds, tid=self.tid, mid=self.mid, batch=self.batch, stans=self.store.next_stan
        )
        while not isinstance(action := proto.next_action(), ChipDownloadDone):
            if isinstance(action, ChipLoaded):
                self.store.chip_replace(action.kind, action.items)
                continue
            try:
                reply = self._exchange(action.message)
            except LinkError as exc:
                proto.on_link_error(str(exc))
                continue
            m = reply.msg
            code = getattr(m, "code", None)
            proto.on_answer(code, m, reason=reason_of(code, getattr(m, "reason", "")))
        self.store.journal_add(
            kind="download_chip",
            stan="",
            batch=self.batch,
            status=st.APPROVED if action.ok else st.DECLINED,
            reason=action.key,
            detail=" ".join(f"{k}={n}" for k, n in action.counts.items())
            + (f" stopped at {action.failed}: {action.error}" if action.failed else ""),
        )
        return action

    def _download_chip_command(self) -> Outcome:
        try:
            self._prelude("download_chip", need_keys=False)
        except LinkError as exc:
            return self._unreachable("download_chip", exc, financial=False)
        done = self._download_chip(KINDS)
        if done.ok:
            self.store.put(chip_terminal=True)
        lines = [
            note("chip_download_ok", self.lang, capk=len(self.store.chip_capks()),
                 aid=len(self.store.chip_aids()))
        ] if done.ok else []  # fmt: skip
        return Outcome(
            command="download_chip",
            reason=done.key,
            code="00" if done.ok else None,
            approved=done.ok,
            screen=lines[0] if lines else screen_of(done.key, None, self.lang),
            remedy=[] if done.ok else remedy_of(done.key, self.lang),
            lines=lines,
            extra={"chip_download": _chip_download_extra(done)},
        )

    def _signon_command(self) -> Outcome:
        operator = self._require_operator("signon", financial=False)
        return self._signon_outcome(operator)

    def _signon_outcome(self, operator: str, lines: Iterable[str] = ()) -> Outcome:
        try:
            self.link.connect()
        except Unreachable as exc:
            return self._unreachable("signon", exc, financial=False)
        if self.keys.signed_on and self.store.reversal() is not None:
            self._deliver_reversal()
        ok, key, code = self._sign_on(operator)
        out_lines = list(lines)
        if ok:
            self._resigned = True  # this command signed on: no second sign-on afterwards
            if self.store.reversal() is not None and self._deliver_reversal():
                out_lines.append(
                    note("reversal_sent", self.lang, stan=self._extra["reversal"]["stan"])
                )
            with contextlib.suppress(_Abort):
                self._upload_offline("signon")
            out_lines.append(note("signed_on", self.lang, batch=self.batch))
        return Outcome(
            command="signon",
            reason=key,
            code=code,
            approved=ok,
            screen=screen_of(key, code, self.lang),
            remedy=[] if ok else remedy_of(key, self.lang),
            lines=out_lines,
            extra={
                "batch": self.batch,
                "check_values": self.keys.check_values(),
                "operator": operator,
            },
        )

    def _signoff(self) -> Outcome:
        self._require_operator("signoff", financial=False)
        code: str | None = None
        key = "approved"
        try:
            self._prelude("signoff", need_keys=False)
            stan = self.store.next_stan()
            reply = self._exchange(
                NetworkRequest(
                    tid=self.tid,
                    mid=self.mid,
                    stan=stan,
                    batch=self.batch,
                    netcode=NetCode.SIGN_OFF,
                    operator=(self.operator or "01").ljust(3),
                )
            )
            code = getattr(reply.msg, "code", None)
            key = reason_of(code, getattr(reply.msg, "reason", ""))
        except LinkError as exc:
            self._lines.append(str(exc))
        self._requirements.discard(3)
        self._requirements.discard(1)
        self.keys.sign_off()
        self._save_keys(False)
        self._resigned = True
        self.store.journal_add(
            kind="signoff", stan="", batch=self.batch, status=st.APPROVED, code=code or ""
        )
        return Outcome(
            command="signoff",
            reason=key,
            code=code,
            approved=True,
            screen=note("signed_off", self.lang),
            lines=[],
        )

    def _echo(self) -> Outcome:
        try:
            self._prelude("echo", need_keys=False)
            stan = self.store.next_stan()
            reply = self._exchange(
                NetworkRequest(
                    tid=self.tid, mid=self.mid, stan=stan, batch=self.batch, netcode=NetCode.ECHO
                )
            )
        except LinkError as exc:
            return self._unreachable("echo", exc, financial=False)
        m = reply.msg
        code = m.code if isinstance(m, NetworkResponse) else None
        key = reason_of(code, m.reason if isinstance(m, NetworkResponse) else "")
        if isinstance(m, NetworkResponse):
            self._clock(m.host_date, m.host_time, reply.rtt)
        ms = round(reply.rtt * 1000)
        self.store.journal_add(
            kind="echo",
            stan=stan,
            batch=self.batch,
            status=st.APPROVED if code == "00" else st.DECLINED,
            code=code or "",
            reason=key,
            detail=f"rtt {ms} ms",
        )
        ok = code == "00"
        return Outcome(
            command="echo",
            reason=key,
            code=code,
            approved=ok,
            screen=note("echo_ok", self.lang, ms=ms) if ok else screen_of(key, code, self.lang),
            remedy=[] if ok else remedy_of(key, self.lang),
            stan=stan,
            extra={
                "rtt_ms": ms,
                "clock_skew_s": (self.store.get("clock_skew") or {}).get("seconds"),
            },
        )

    def _management(self, command: str, msg: Request, detail: str) -> Outcome:
        """One management exchange (no card, no money): journaled, 00 or the host's reason."""
        try:
            self._prelude(command, need_keys=False)
            reply = self._exchange(msg)
        except LinkError as exc:
            return self._unreachable(command, exc, financial=False)
        m = reply.msg
        code = getattr(m, "code", None)
        key = reason_of(code, getattr(m, "reason", ""))
        ok = code == "00"
        self.store.journal_add(
            kind=command,
            stan=msg.stan,
            batch=self.batch,
            status=st.APPROVED if ok else st.DECLINED,
            code=code or "",
            reason=key,
            detail=detail,
        )
        return Outcome(
            command=command,
            reason=key,
            code=code,
            approved=ok,
            screen=note(f"{command}_ok", self.lang) if ok else screen_of(key, code, self.lang),
            remedy=[] if ok else remedy_of(key, self.lang),
            stan=msg.stan,
        )

    def _parameters_command(self) -> Outcome:
        try:
            self._prelude("parameters", need_keys=False)
        except LinkError as exc:
            return self._unreachable("parameters", exc, financial=False)
        before = self.store.get("parameters_at")
        notice = self._download_parameters()
        got = self.store.get("parameters_at") != before
        params = self.store.get("parameters") or {}
        key = "approved" if got else "network.timeout"
        lines = [note("parameters_ok", self.lang)] if got else []
        if notice:
            lines.append(note("notice", self.lang, text=notice["text"]))
        return Outcome(
            command="parameters",
            reason=key,
            code="00" if got else None,
            approved=got,
            screen=lines[0] if lines else screen_of(key, None, self.lang),
            lines=lines,
            extra={"parameters": params},
        )

    def _status_command(self) -> Outcome:
        params = self.store.get("parameters") or {}
        records = b"011021031041051" + encode_params(
            tuple(ParamRecord(tag, str(v)) for tag, v in sorted(params.items()))
        )
        msg = NetworkRequest(
            tid=self.tid,
            mid=self.mid,
            stan=self.store.next_stan(),
            batch=self.batch,
            netcode=NetCode.STATUS_UPLOAD,
            data=records,
        )
        return self._management("status", msg, f"{len(records)} bytes of status records")
