"""The words a coordinator or manager reads in lists and reports, in zh_CN and en.

Sibling of :mod:`core.messages` (sentences): here are single words and column
headers. Statuses, outcomes, urgencies, channels and triggers are keyed by their
stored value (the ``core.vocab`` StrEnum values are those strings), so
``word("status", task.status, "zh_CN")`` works with a plain string or an enum.
Procedure and milestone names come from the plugins (:class:`Names`), never keys.

Machine output (JSON, CSV values) keeps the keys; only people's output goes
through this module.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

WORDS: dict[str, dict[str, tuple[str, str]]] = {
    "status": {  # a task's status
        "open": ("待回访", "open"),
        "completed": ("已完成", "completed"),
        "unsuccessful": ("不成功回访", "unsuccessful"),
        "wrong_number": ("号码错误", "wrong number"),
        "refused": ("拒绝回访", "refused"),
        "booked": ("已预约", "booked"),
        "cancelled": ("已取消", "cancelled"),
        "suppressed": ("已屏蔽（勿扰）", "suppressed"),
        "expired": ("已过期", "expired"),
    },
    "outcome": {
        "reached": ("已接通", "reached"),
        "no_answer": ("无人接听", "no answer"),
        "busy": ("占线", "busy"),
        "powered_off": ("关机", "powered off"),
        "out_of_service": ("停机", "out of service"),
        "cannot_connect": ("无法接通", "cannot connect"),
        "not_convenient": ("不方便接听", "not convenient"),
        "wrong_number": ("号码错误", "wrong number"),
        "refused": ("拒绝", "refused"),
        "callback_requested": ("约定回电", "callback requested"),
        "booked": ("已预约", "booked"),
    },
    "urgency": {
        "clinical": ("临床", "clinical"),
        "routine": ("常规", "routine"),
    },
    "channel": {
        "phone": ("电话", "phone"),
        "sms": ("短信", "SMS"),
        "wechat": ("微信", "WeChat"),
        "email": ("电子邮件", "email"),
        "letter": ("信件", "letter"),
        "questionnaire": ("问卷", "questionnaire"),
    },
    "trigger": {
        "procedure": ("治疗", "procedure"),
        "discharge": ("出院", "discharge"),
        "consultation": ("咨询", "consultation"),
        "visit_without_treatment": ("面诊未治疗", "visit without treatment"),
        "missed_appointment": ("爽约", "missed appointment"),
        "interruption": ("治疗中断", "interruption"),
    },
    "complaint_status": {
        "open": ("待答复", "open"),
        "responded": ("已答复", "responded"),
        "closed": ("已结案", "closed"),
    },
    "escalation_status": {
        "open": ("待处理", "open"),
        "acknowledged": ("已确认", "acknowledged"),
        "resolved": ("已处理", "resolved"),
    },
    "change": {  # what a schedule run does to a task (schedule --dry-run)
        "created": ("新建", "created"),
        "moved": ("改期", "moved"),
        "cancelled": ("取消", "cancelled"),
    },
    "severity": {  # an escalation's
        "clinical": ("紧急", "clinical"),
        "routine": ("常规", "routine"),
    },
    "plugin_status": {
        "ok": ("正常", "ok"),
        "failed": ("加载失败（见下）", "FAILED (see below)"),
    },
    "plugin_source": {
        "built-in": ("内置", "built-in"),
        "core": ("核心", "core"),
        "registered": ("已注册", "registered"),
    },
    "audit_action": {
        "attempt": ("拨打", "attempt"),
        "claim": ("领取", "claim"),
        "import": ("导入", "import"),
        "complaint:respond": ("答复投诉", "complaint:respond"),
        "complaint:close": ("投诉结案", "complaint:close"),
        "escalation:resolve": ("处理上报", "escalation:resolve"),
        "escalation:open": ("上报医生", "escalation:open"),
        "escalation:ack": ("确认上报", "escalation:ack"),
        "escalation:list_mine": ("查看我的上报", "escalation:list_mine"),
        "dnc:on": ("设为勿扰", "dnc:on"),
        "dnc:off": ("恢复联系", "dnc:off"),
        "action:escalate": ("上报医生", "action:escalate"),
        "action:complaint": ("投诉", "action:complaint"),
        "action:referral": ("转诊", "action:referral"),
        "action:extra_call": ("追加回访", "action:extra_call"),
        "action:record_dates": ("记录日期", "action:record_dates"),
        "action:fix_phone": ("更正号码", "action:fix_phone"),
        "phone:shown": ("查看完整号码", "phone:shown"),
        "patient:export": ("导出患者数据", "patient:export"),
        "patient:erase": ("匿名化患者", "patient:erase"),
        "fallback:phone": ("改为电话回访", "fallback:phone"),
        "qa_score": ("通话抽查评分", "qa_score"),
        "qa_sample": ("抽取抽查通话", "qa_sample"),
        "optout": ("退订渠道", "optout"),
        "optout:undo": ("恢复渠道", "optout:undo"),
        "resend": ("重发", "resend"),
        "message:queued": ("消息排队", "message:queued"),
        "message:sent": ("消息已发送", "message:sent"),
        "message:failed": ("消息发送失败", "message:failed"),
        "message:expired": ("消息已过期", "message:expired"),
        "message:delivered": ("消息已送达", "message:delivered"),
        "message:retried": ("消息重试", "message:retried"),
    },
    "kind": {  # an action's or a message's kind (audit details)
        "milestone": ("回访节点", "milestone"),
        "notice": ("提前通知", "notice"),
        "after_unsuccessful": ("未接通后补发", "after_unsuccessful"),
        "escalate": ("上报医生", "escalate"),
        "complaint": ("投诉", "complaint"),
        "referral": ("转诊", "referral"),
        "extra_call": ("追加回访", "extra_call"),
        "record_dates": ("记录日期", "record_dates"),
        "fix_phone": ("更正号码", "fix_phone"),
    },
    "entity": {
        "task": ("任务", "task"),
        "patient": ("患者", "patient"),
        "complaint": ("投诉", "complaint"),
        "escalation": ("上报", "escalation"),
        "file": ("文件", "file"),
        "episode": ("就诊记录", "episode"),
        "message": ("消息", "message"),
        "attempt": ("通话", "attempt"),
    },
    "flag": {
        "overdue": ("逾期", "OVERDUE"),
        "yes": ("是", "yes"),
        "no": ("否", "no"),
        "provisional": ("暂定", "provisional"),
        "overridden": ("* = 门店配置已修改", "* = changed by the site's configuration"),
    },
    "unit": {  # durations: 24h, 3mo ...
        "min": ("{n}分钟", "{n} min"),
        "h": ("{n}小时", "{n} h"),
        "d": ("{n}天", "{n} d"),
        "w": ("{n}周", "{n} wk"),
        "mo": ("{n}个月", "{n} mo"),
        "y": ("{n}年", "{n} yr"),
    },
}

# Column headers of every list a person reads (tables, the CSV's header row, xlsx headings).
HEADERS: dict[str, tuple[str, str]] = {
    "id": ("编号", "ID"),
    "task_id": ("任务", "Task"),
    "task_ids": ("任务", "Tasks"),
    "patient_id": ("患者编号", "Patient"),
    "patient_name": ("姓名", "Name"),
    "patient": ("患者 / 电话", "Patient / phone"),
    "episode_id": ("就诊编号", "Episode"),
    "phone": ("电话", "Phone"),
    "phone_invalid": ("号码有误", "Phone invalid"),
    "site": ("门店", "Site"),
    "specialty": ("专科", "Specialty"),
    "specialties": ("专科", "Specialties"),
    "procedure": ("项目", "Procedure"),
    "procedures": ("项目", "Procedures"),
    "milestone": ("回访节点", "Milestone"),
    "milestones": ("回访节点", "Milestones"),
    "purpose": ("目的", "Purpose"),
    "channel": ("方式", "Channel"),
    "urgency": ("紧急程度", "Urgency"),
    "status": ("状态", "Status"),
    "due_at": ("应回访时间", "Due"),
    "due": ("应回访", "Due"),
    "window_start": ("窗口开始", "Window opens"),
    "window_end": ("窗口结束", "Window closes"),
    "window": ("回访窗口", "Window"),
    "offset": ("时间点", "Offset"),
    "attempts": ("次数", "Tries"),
    "failed_attempts": ("未接通次数", "Failed tries"),
    "max_attempts": ("最多次数", "Max tries"),
    "next_attempt_at": ("下次拨打", "Next try"),
    "overdue": ("逾期", "Overdue"),
    "provisional": ("暂定", "Provisional"),
    "assignee": ("领取人", "Held by"),
    "name": ("名称", "Name"),
    "key": ("代码", "Key"),
    "code": ("代码", "Code"),
    "timezone": ("时区", "Timezone"),
    "locale": ("语言", "Language"),
    "version": ("版本", "Version"),
    "source": ("来源", "Source"),
    "hooks": ("挂钩", "Hooks"),
    "doctor": ("医生", "Doctor"),
    "reason": ("原因", "Reason"),
    "opened_at": ("发起时间", "Opened"),
    "resolved_by": ("处理人", "Resolved by"),
    "resolution": ("处理结果", "Resolution"),
    "category": ("类别", "Category"),
    "staff": ("涉及人员", "Staff"),
    "description": ("描述", "Description"),
    "responded_at": ("答复时间", "Responded"),
    "response": ("答复", "Response"),
    "closed_at": ("结案时间", "Closed"),
    "at": ("时间", "At"),
    "recorded_at": ("实际记录时间", "Recorded at"),
    "user": ("用户", "User"),
    "action": ("操作", "Action"),
    "entity": ("对象", "Entity"),
    "entity_id": ("对象编号", "Entity id"),
    "detail": ("详情", "Detail"),
    "outcome": ("结果", "Outcome"),
    "note": ("备注", "Note"),
    "callback_at": ("回电时间", "Callback at"),
    "file": ("文件", "File"),
    "deadline": ("答复期限", "Answer by"),
    "categories": ("全部类别", "All categories"),
    "handler": ("负责人", "Handler"),
    "severity": ("紧急程度", "Severity"),
    "assigned_to": ("负责医生", "Assigned to"),
    "handle_by": ("处理时限", "Handle by"),
    "change": ("变更", "Change"),
    "before": ("原来", "Before"),
    "after": ("之后", "After"),
    "kind": ("类型", "Kind"),
    "plugin": ("插件", "Plugin"),
    "question": ("问题", "Question"),
    "answers": ("回答", "Answers"),
    "counts": ("数量", "Counts"),
    "on_time": ("按时", "On time"),
    "tries": ("尝试次数", "Tries"),
    "score": ("评分", "Score"),
    "stored": ("已记录", "Stored"),
    "birthday": ("生日", "Birthday"),
    "anniversary": ("纪念日", "Anniversary"),
    "accepted": ("已接受", "Accepted"),
    "error": ("错误", "Error"),
    "until": ("保留到", "Until"),
    "message": ("消息", "Message"),
    "of": ("原消息", "Of"),
    "object": ("对象", "Object"),
    "patients_created": ("新增患者", "patients created"),
    "patients_updated": ("更新患者", "patients updated"),
    "patients_unchanged": ("未变患者", "patients unchanged"),
    "episodes_created": ("新增就诊", "episodes created"),
    "episodes_updated": ("更新就诊", "episodes updated"),
    "episodes_unchanged": ("未变就诊", "episodes unchanged"),
    "rows": ("行数", "Rows"),
}


def word(kind: str, value: Any, locale: str | None) -> str:
    """``value`` (a stored key or a StrEnum) of ``kind`` in ``locale``; an unknown value is shown as itself."""
    if value is None:
        return ""
    entry = WORDS.get(kind, {}).get(str(value))
    if entry is None:
        return str(value)
    return entry[0] if locale == "zh_CN" else entry[1]


def header(column: str, locale: str | None) -> str:
    """The heading of a column in ``locale`` (the key itself when the catalogue does not know it)."""
    entry = HEADERS.get(column)
    if entry is None:
        return column
    return entry[0] if locale == "zh_CN" else entry[1]


def duration(value: Any, locale: str | None) -> str:
    """A protocol duration (``24h``, ``3mo``) as people read it: ``24小时``, ``3个月`` / ``24 h``, ``3 mo``."""
    amount, unit = getattr(value, "amount", None), getattr(value, "unit", None)
    if amount is None or unit not in WORDS["unit"]:
        return str(value)
    zh, en = WORDS["unit"][unit]
    return (zh if locale == "zh_CN" else en).format(n=amount)


class Names:
    """Procedure and milestone names as the plugins give them (not keys), looked up once each.

    ``plugins`` is the loaded plugins, or a function returning them: then the names come from a table kept
    in the per-user cache (core/cache.py, keyed by core's and the plugins' files) and the plugins are loaded
    only to build it, or for a key it does not hold.
    """

    def __init__(self, plugins: Any, locale: str | None) -> None:
        self._plugins, self.locale = plugins, locale or "en"
        self._table: dict[str, dict[str, dict[str, str]]] | None = None

    @property
    def plugins(self) -> Any:
        if callable(self._plugins):
            self._plugins = self._plugins()
        return self._plugins

    def _lookup(self, kind: str, key: str) -> str | None:
        if not callable(self._plugins):
            return None  # the plugins are loaded: ask them
        if self._table is None:
            self._table = names_table(self._plugins) or {}
        found = self._table.get(kind, {}).get(key)
        return found.get(self.locale) if found else None

    def specialty(self, key: str) -> str:
        return self._lookup("s", key) or _specialty_name(self.plugins, key, self.locale)

    def procedure(self, specialty: str, code: str) -> str:
        return self._lookup("p", f"{specialty}|{code}") or _procedure_name(self.plugins, specialty, code, self.locale)

    def milestone(self, specialty: str, procedure: str, key: str) -> str:
        return (self._lookup("m", f"{specialty}|{procedure}|{key}")
                or _milestone_name(self.plugins, specialty, procedure, key, self.locale))


def names_table(load_plugins: Any) -> dict[str, dict[str, dict[str, str]]] | None:
    """Every specialty's, procedure's and milestone's name in every locale, from the cache when core and the
    plugins are unchanged; built from ``load_plugins()`` (and stored) otherwise. ``None``: no cache."""
    from core import cache
    from core.config import plugins_key
    from core.messages import LOCALES

    if cache.folder() is None:
        return None
    key = plugins_key()
    if key is None:
        return None
    stored = cache.get("names", key)
    if isinstance(stored, dict):
        return stored
    plugins = load_plugins()
    table: dict[str, dict[str, dict[str, str]]] = {"s": {}, "p": {}, "m": {}}
    for spec_key, (_, spec) in plugins.specialties().items():
        table["s"][spec_key] = {loc: spec.names.get(loc) for loc in LOCALES}
        for proc in spec.procedures:
            table["p"][f"{spec_key}|{proc.code}"] = {loc: proc.names.get(loc) for loc in LOCALES}
            try:
                found = plugins.milestones(spec_key, proc.code)
            except Exception:  # reported where the milestones are used
                continue
            for _, milestone in found:
                table["m"][f"{spec_key}|{proc.code}|{milestone.key}"] = {
                    loc: milestone.names.get(loc) for loc in LOCALES}
    cache.put("names", key, table)
    return table


@lru_cache(maxsize=512)
def _specialty_name(plugins: Any, key: str, locale: str) -> str:
    spec = plugins.specialty(key)
    return spec.names.get(locale) if spec else key


@lru_cache(maxsize=4096)
def _procedure_name(plugins: Any, specialty: str, code: str, locale: str) -> str:
    spec = plugins.specialty(specialty)
    proc = spec.procedure(code) if spec else None
    return proc.names.get(locale) if proc else code


@lru_cache(maxsize=8192)
def _milestone_name(plugins: Any, specialty: str, procedure: str, key: str, locale: str) -> str:
    try:
        found = plugins.milestones(specialty, procedure)
    except Exception:  # a plugin no longer installed: its key is all there is
        return key
    for _, milestone in found:
        if milestone.key == key:
            return milestone.names.get(locale)
    if key.startswith("greeting_"):  # birthday and anniversary greetings are core's, not a plugin's
        from core.greetings import NAMES, kind_of

        return NAMES[kind_of(key)].get(locale)
    return key
