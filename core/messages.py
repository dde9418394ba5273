"""What followup says to a coordinator, in zh_CN and en: one catalogue, one renderer, one locale rule.

Every entry is a (zh_CN, en) pair of ``str.format`` texts with the same
placeholders. A summary is rendered with :func:`message`; an error carries a
:class:`Msg` (key and values) and is rendered when it is printed, in the
language of whoever reads it (:func:`ui_locale`). ``str()`` of a :class:`Msg` is
the English text, so logs and library callers see what they always saw.

Machine output (``--format json``) never goes through this module: its keys
and values are a contract.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

LOCALES = ("zh_CN", "en")
FALLBACK = "en"  # when nobody's language is known (no configuration loaded)

MESSAGES: dict[str, tuple[str, str]] = {
    # -- errors: the frame the CLI prints them in
    "error": ("错误：{error}", "Error: {error}"),
    # -- followup demo
    "demo_chain": ("演示集团：{chain}，{n} 个门店，数据库 {db}", "Demo chain: {chain} — {n} sites, database {db}"),
    "demo_imported": ("已导入新患者 {patients} 位、新就诊记录 {episodes} 条；新建回访任务 {created} 个"
                      "（已排期 {existing} 个，排期前已过期 {expired} 个）。",
                      "Imported {patients} new patients and {episodes} new episodes; scheduled {created} new "
                      "follow-up tasks ({existing} already scheduled, {expired} expired before scheduling)."),
    "demo_simulated": ("已模拟 {n} 次过去的拨打（报表因此有数据：followup report month）。",
                       "Simulated {n} past call attempts (so reports have data: followup report month)."),
    "demo_site_today": ("{site}（{code}）— {day}：{n} 个电话", "{site} ({code}) — {day}: {n} call(s)"),
    "demo_open": ("\n共有 {n} 个待回访任务。", "\n{n} open follow-ups in total."),
    "demo_try": ("\n接下来可以试试：", "\nTry next:"),
    "demo_try_worklist": ("今天的电话，每位患者一行", "today's calls, one line per patient"),
    "demo_try_claim": ("领取电话（保留 30 分钟）", "take calls (held 30 min)"),
    "demo_try_call": ("引导式回访：资料卡、话术、回答", "guided calls: card, script, answers"),
    "demo_try_script": ("一通电话该说什么（英文话术）", "what to say on one call"),
    "demo_try_protocols": ("门店的第 5 天拆鼻夹板设置", "the site's day-5 splint override"),
    "demo_try_report": ("上周的数据", "last week's figures"),
    "demo_try_outbox": ("发给患者的短信、微信和邮件", "messages to patients"),
    "demo_messages": ("\n消息（短信、微信、邮件）：", "\nMessages (SMS, WeChat, email):"),
    "demo_messages_sent": ("  本次发送 {n} 条；演示环境把每条消息写成文件，存放在 {folder}（见 docs/channels.md）。",
                           "  {n} sent now; the demo writes each message to a file in {folder} (docs/channels.md)."),
    "demo_messages_queued": ("  另有 {n} 条等待发送：followup send（安静时段不发送）。",
                             "  {n} queued for later: followup send (never in quiet hours)."),
    "demo_messages_link": ("  打开患者问卷：先运行 followup serve，再在浏览器打开\n  {link}",
                           "  Open a patient's questionnaire: run followup serve, then open\n  {link}"),
    # -- finding the chain, followup init
    "no_chain": ("找不到集团配置（已查找：{looked}）。请运行 followup init 在 {folder} 中创建，"
                 "或运行 followup init DIR 后用 --config DIR/chain.yaml 或环境变量 FOLLOWUP_CONFIG 指定",
                 "no chain configuration found (looked for {looked}). Create one with 'followup init' "
                 "(in {folder}), or 'followup init DIR' and point at it with --config DIR/chain.yaml "
                 "or FOLLOWUP_CONFIG"),
    "init_exists": ("{path} 已存在：未覆盖（用 --force 覆盖）",
                    "{path} already exists: not overwritten (--force to overwrite)"),
    "init_no_specialties": ("未安装任何专科插件：请先安装一个（例如 pip install 某专科插件）",
                            "no specialty plugin is installed: install one first"),
    "init_cannot_write": ("无法写入 {path}：{error}", "cannot write {path}: {error}"),
    "init_written": ("已写入：{files}", "Wrote {files}"),
    "init_found": ("followup 会自动找到这份配置。下一步：编辑门店名称，然后 followup config check",
                   "followup finds this chain by itself. Next: edit the names, then followup config check"),
    "init_point": ("使用方法：followup --config {path} config check，或 export FOLLOWUP_CONFIG={path}",
                   "Point at it with: followup --config {path} config check, or export FOLLOWUP_CONFIG={path}"),
    # -- setup: config check, plugins list
    "holiday_provisional": ("{country} 的节假日安排只公布到 {until}，回访排到了 {horizon}："
                            "{years} 年的常规回访为暂定安排"
                            "（公布后在 holiday_notices 中填写官方通知，再运行 followup schedule --replan）",
                            "holiday data for {country} is published until {until}; follow-ups reach {horizon}: "
                            "routine calls in {years} are placed provisionally (add the official notice under "
                            "holiday_notices, then run 'followup schedule --replan')"),
    "config_ok": ("{path}：配置正确，共 {n} 个门店", "{path}: OK — {n} sites"),
    "plugin_failed": ("插件 {name!r} 加载失败：{error}", "plugin {name!r} failed to load: {error}"),
    "plugin_failed_row": ("{name}：加载失败：{error}", "{name}: failed to load: {error}"),
    "plugin_source_entry_point": ("入口点 {value}", "entry point {value}"),
    "protocols_changed": ("* = 门店配置已修改", "* = changed by the site's configuration"),
    # -- the operating system's reasons, for files that cannot be written
    "os.ENOENT": ("文件夹不存在", "No such file or directory"),
    "os.EACCES": ("没有写入权限", "Permission denied"),
    "os.EPERM": ("没有权限", "Operation not permitted"),
    "os.EROFS": ("只读文件系统", "Read-only file system"),
    "os.EISDIR": ("这是一个文件夹", "Is a directory"),
    "os.ENOSPC": ("磁盘已满", "No space left on device"),
    # -- db upgrade, db recount
    "db_at_revision": ("{url}：数据库版本 {revision}", "{url}: at revision {revision}"),
    "db_counts_agree": ("报表的每日计数和任务的拨打计数与明细一致",
                        "report day counts and task attempt counters agree with the rows"),
    "db_recounted": ("报表的每日计数已重新统计", "report day counts recounted"),
    "db_recounted_timezone": ("报表的每日计数已按集团时区重新统计",
                              "report day counts recounted for the chain's timezone"),
    # -- report
    "report_not_your_site": ("{user} 只能查看 {sites} 的报表，不能查看门店 {site}",
                             "{user} may report on {sites}, not on site {site}"),
    "report_xlsx_needs_out": ("--format xlsx 生成工作簿：请用 --out 文件名.xlsx 指定",
                              "--format xlsx writes a workbook: give --out FILE.xlsx"),
    "report_cannot_write": ("无法写入 --out {out}：{error}", "cannot write --out {out}: {error}"),
    "period_not_a_period": ("--period {text!r} 不是统计期间：请写成 2026-W47（周）、2026-11（月）或 2026-Q4（季度）",
                            "--period {text!r} is not a period: write 2026-W47, 2026-11 or 2026-Q4"),
    "period_not_a_kind": ("--period {text!r} 不是统计期间：请写成 2026-W47、2026-11 或 2026-Q4"
                          "（{kind}报表写成 {example}）",
                          "--period {text!r} is not a period: write 2026-W47, 2026-11 or 2026-Q4 "
                          "(for a {kind}: {example})"),
    "period_wrong_kind": ("--period {text!r} 是{found}，与{kind}报表不符：请写成 {example}（或不指定报表类型）",
                          "--period {text!r} is a {found}, but the report asked for is a {kind}: "
                          "write it like {example} or leave out '{kind}'"),
    "period_kind.week": ("周", "week"),
    "period_kind.month": ("月", "month"),
    "period_kind.quarter": ("季度", "quarter"),
    "period_no_such": ("--period {text!r} 不存在（周 1–52/53，月 1–12）",
                       "--period {text!r} does not exist (week 1–52/53, month 1–12)"),
    # -- lists
    "wrote": ("已写入 {file}", "wrote {file}"),
    "escalations_title": ("上报医生：{n} 条", "{n} escalation(s)"),
    "complaints_title": ("投诉：{n} 条", "{n} complaint(s)"),
    "worklist_title": ("{sites}：{n} 个电话", "{sites}: {n} call(s)"),
    # -- claim and call (interactive)
    "claimed": ("已领取 {n} 个回访任务，保留 {hold}：{ids}。下一步：followup call",
                "Claimed {n} task(s) for {hold}: {ids}. Next: followup call"),
    "nothing_to_claim": ("没有可领取的回访：到期的电话都已完成或由同事处理中。",
                         "Nothing to claim: every due call is done or held by a colleague."),
    "no_calls": ("您手上没有回访任务。请先领取：followup claim", "You hold no calls. Claim some first: followup claim"),
    "also_covers": ("\n这通电话同时完成任务 {task}：", "\nThe same call also covers task {task}:"),
    "outcome": ("通话结果", "Outcome"),
    "outcome_pick": ("通话结果（填序号或名称）", "Outcome (number or name)"),
    "outcome_not_known": ("{text!r} 不在选项中：请填 1–{n} 的序号或结果名称",
                          "{text!r} is not one of them: type 1–{n}"),
    "skip_word": ("跳过", "skip"),
    "note": ("备注（可不填）", "Note (optional)"),
    "callback_at": ("回电时间（例如 {example}、明天下午3点、周一 10:00）",
                    "Call back at (e.g. {example}, tomorrow 3pm, mon 10:00)"),
    "callback_echo": ("回电时间：{at}", "Call back at: {at}"),
    "callback_confirm": ("确认吗？", "Is that right?"),
    "when_not_understood": ("看不懂时间 {text!r}：请写成 15:00、明天下午3点、后天上午、周一 10:00 或 2026-11-24 15:00",
                            "{text!r} is not a time I understand: write 15:00, tomorrow 3pm, mon 10:00, "
                            "or 2026-11-24 15:00"),
    "when_no_such_day": ("{text!r} 不是存在的日期", "{text!r} is not a day that exists"),
    "when_no_such_time": ("{text!r} 不是存在的钟点", "{text!r} is not a time of day that exists"),
    "not_saved": ("任务 {task} 未保存：{error}。请选择其他结果，或输入 skip 跳过。",
                  "Task {task} not saved: {error}. Choose another outcome, or skip."),
    "stopped": ("\n已停止。已记录 {n} 通电话；其余任务保留到领取时限结束。",
                "\nStopped. {n} call(s) recorded; the rest stay claimed until the hold expires."),
    "done": ("\n完成：已记录 {n} 通电话。", "\nDone: {n} call(s) recorded."),
    # -- record: what one call changed
    "recorded": ("已记录 任务 {id}：{outcome} → {status}（第 {attempts} 次拨打，失败 {failed}/{max}）",
                 "Task {id}: {outcome} → {status} (attempt {attempts}, failed {failed}/{max})"),
    "not_counted": ("  本次不计入失败次数：距上一次计入的失败拨打（{at}）不足 {min_gap}，视为同一次尝试",
                    "  not counted towards the failed attempts: less than {min_gap} after the counted failed "
                    "attempt at {at}, so the same try"),
    "next_attempt": ("  下次拨打：{at}", "  next attempt: {at}"),
    "next_attempt_overdue": ("  下次拨打：{at}（已超出回访窗口：逾期）",
                             "  next attempt: {at}  (past the window: overdue)"),
    "action": ("  → {kind}：{reason}", "  → {kind}: {reason}"),
    "action_id": (" [#{id}]", " [#{id}]"),
    "action_handler": ("（先交{handler}处理）", " (first to the {handler})"),
    "action_assignee": ("（{assignee}，时限 {due}）", " ({assignee}, due {due})"),
    "action.escalate": ("上报医生", "escalate"),
    "action.complaint": ("投诉", "complaint"),
    "action.referral": ("转介绍", "referral"),
    "action.extra_call": ("追加回访", "extra_call"),
    "action.record_dates": ("记录日期", "record_dates"),
    "action.fix_phone": ("更正号码", "fix_phone"),
    "fix_phone_reason": ("号码已标记为错误，需更正", "phone number flagged for correction"),
    "status.open": ("待回访", "open"),
    "status.completed": ("已完成", "completed"),
    "status.unsuccessful": ("不成功回访", "unsuccessful"),
    "status.wrong_number": ("号码错误", "wrong_number"),
    "status.refused": ("拒绝回访", "refused"),
    "status.booked": ("已预约", "booked"),
    "status.suppressed": ("已屏蔽（勿扰）", "suppressed"),
    "status.expired": ("已过期", "expired"),
    # -- errors a coordinator meets while recording a call
    "no_task": ("任务 {id} 不存在", "no task {id}"),
    "not_your_site": ("{user} 负责 {sites}，不负责门店 {site}", "{user} works for {sites}, not for site {site}"),
    "not_staff": ("{user!r} 不在 {path} 的员工名单中（员工：{known}）；请用 --as USER 指定",
                  "{user!r} is not in the staff list of {path} (staff: {known}); use --as USER"),
    "unknown_outcome": ("未知的通话结果 {outcome!r}（可选：{choices}）",
                        "unknown outcome {outcome!r} (one of: {choices})"),
    "task_not_open": ("任务 {id} 的状态是 {status}，不是待回访：无需记录",
                      "task {id} is {status}, not open: nothing to record"),
    "task_final": ("任务 {id} 的状态已是 {status}，不是待回访：{by} 于 {at} 记录了最后一次拨打，无需再记录",
                   "task {id} is {status}, not open: {by} recorded its last attempt at {at}; nothing to record"),
    "task_held": ("任务 {id} 已由 {holder} 领取，保留到 {until}：两位协调员不能拨打同一位患者",
                  "task {id} is held by {holder} until {until}: two coordinators must not call the same patient"),
    "callback_needs_time": ("通话结果 callback_requested 需要 --callback-at（患者希望回电的时间）",
                            "outcome callback_requested needs --callback-at (when the patient asked to be called)"),
    "callback_only_with_request": ("--callback-at 只能与通话结果 callback_requested 一起使用，不能与 {outcome!r}",
                                   "--callback-at only goes with outcome callback_requested, not {outcome!r}"),
    "answers_only_when_reached": ("只有联系到患者时才能记录回答，{outcome!r} 不行",
                                  "answers can only be recorded when the patient was reached, not with {outcome!r}"),
    "question_treated_only": ("问题 {key} 只问接受过治疗的患者（这位患者没有在这里治疗过）",
                              "question {key} is asked only of patients who were treated (this patient was not)"),
    "unknown_question": ("未知的问题 {key!r}（此任务的问题：{keys}）",
                         "unknown question {key!r} (this task asks: {keys})"),
    "callback_in_past": ("回电时间 {at} 已过（现在是 {now}）", "callback time {at} is not in the future (now {now})"),
    "callback_quiet_hours": ("回电时间 {at} 在免打扰时段 {quiet} 内：请与患者另约时间",
                             "callback time {at} falls in the quiet hours {quiet}: "
                             "agree on another time with the patient"),
    "answer_format": ("--answer {item!r}：请写成 KEY=VALUE", "--answer {item!r}: write KEY=VALUE"),
    # -- answers that do not fit their question
    "answer_yes_no": ("{key}：请回答 是 或 否，收到的是 {text!r}", "{key}: answer yes or no, got {text!r}"),
    "answer_whole_number": ("{key}：应为整数，收到的是 {text!r}", "{key}: expected a whole number, got {text!r}"),
    "answer_range": ("{key}：应在 {min}–{max} 之间，收到的是 {number}", "{key}: expected {min}–{max}, got {number}"),
    "answer_choice": ("{key}：应为 {values} 之一（或 1–{n}），收到的是 {text!r}",
                      "{key}: expected one of {values} (or 1–{n}), got {text!r}"),
    "answer_empty": ("{key}：回答为空", "{key}: empty answer"),
    "answer_problems": ("{problems}", "{problems}"),  # every problem of one call's answers, joined
    # -- follow-ups beyond the protocol (issue 15): bookings, sweep, QA, referrals, greetings, manners
    "answer_month_day": ("{key}：请写成 月-日（如 05-12 或 5月12日），收到的是 {text!r}",
                         "{key}: write a month and day (e.g. 05-12 or 12 May), got {text!r}"),
    "booked_needs_time": ("在 {milestone} 上预约需要 --booked-at（约好的到院时间）",
                          "a booking on {milestone} needs --booked-at (when the patient will come)"),
    "booked_at_only_with_booked": ("--booked-at 只能与通话结果 booked 一起使用，不能与 {outcome!r}",
                                   "--booked-at only goes with outcome booked, not {outcome!r}"),
    "booked_at_prompt": ("约好的到院时间（ISO 格式，如 2026-12-10T10:00；咨询转化可回车跳过）",
                         "Appointment time (ISO, e.g. 2026-12-10T10:00; Enter to skip for sales follow-ups)"),
    "booked_at_past": ("预约时间 {at} 已过（现在是 {now}）", "the booking time {at} is not in the future (now {now})"),
    "booked_not_inviting": ("{milestone}（{purpose}）不是邀请患者回院的回访，不能记录 booked；"
                            "可以预约的节点：复查、拆线、邀约、改约、修复提醒、咨询转化",
                            "{milestone} ({purpose}) does not invite the patient back, so it cannot be 'booked'; "
                            "bookable: reviews, suture removal, invitations, rebooking, restoration reminders, sales"),
    "recording_only_attempted": ("--recording 只能用于接通的电话（reached、booked 等），不能与 {outcome!r}",
                                 "--recording goes with a connected call, not with {outcome!r}"),
    "qa_bad_week": ("{text!r} 不是 ISO 周（请写成 2026-W48）", "{text!r} is not an ISO week (write it like 2026-W48)"),
    "qa_no_attempt": ("通话记录 {id} 不存在", "no attempt {id}"),
    "qa_not_connected": ("通话记录 {id} 的结果是 {outcome}：只有接通的电话可以评分",
                         "attempt {id} was {outcome}: only connected calls are scored"),
    "qa_supervisors_only": ("{user} 不是主管：只有 manager（主管）或 admin 可以给通话评分",
                            "{user} is not a manager: only a manager or admin scores calls"),
    "qa_own_call": ("不能给自己的通话评分（通话记录 {id}）", "you cannot score your own call (attempt {id})"),
    "qa_scored": ("已评分 通话记录 {id}：{score} 分（{who}，{at}）", "Scored attempt {id}: {score} ({who}, {at})"),
    "qa_sampled": ("{week}：抽查 {n} 通电话（每位回访员最多 {per} 通，固定随机种子，可重复）",
                   "{week}: {n} call(s) to review (up to {per} per coordinator, fixed seed: the same pick every time)"),
    "import_not_month_day": ("{text!r} 不是月-日（请写成 05-12、1990-05-12 或 5月12日）",
                             "{text!r} is not a month and day (write 05-12, 1990-05-12 or 12 May)"),
    "import_unknown_referrer": ("推荐人 {patient!r} 既不在数据库中，也不在此文件中",
                                "referrer {patient!r} is neither in the database nor in this file"),
    "import_self_referral": ("患者不能推荐自己", "a patient cannot refer themselves"),
    "import_unknown_trigger": ("未知的回访类型 {text!r}（可选：{triggers}）",
                               "unknown trigger {text!r} (one of: {triggers})"),
    "import_trigger_not_offered": ("专科 {specialty} 没有 {trigger} 类回访的项目（有：{triggers}）",
                                   "{specialty} has no procedure for trigger {trigger} (it has: {triggers})"),
    "swept": ("，月末补打 {n} 个（{days}）", ", {n} month-end sweep call(s) ({days})"),
    "greetings_created": ("，生日/纪念日问候 {n} 个", ", {n} greeting(s)"),
    "card_value_tier": ("客户等级", "Value tier"),
    "card_manners": ("电话礼仪", "Telephone manners"),
    "card_sweep": ("月末补打：本月此前未能联系上（{outcome}），再打一次",
                   "Month-end sweep: unreachable earlier this month ({outcome}); one more try"),
    "manners.ring": ("拨出后耐心等铃声响够（约十声）再挂断，对方可能正走过来接。",
                     "Let it ring long enough (about ten rings) before you hang up; "
                     "the patient may be on the way to the phone."),
    "manners.redial": ("通话意外中断时立即回拨，并先说明刚才断线了。",
                       "If the call drops, redial at once and say the line was cut."),
    "manners.hold": ("请对方稍等时不要超过一分钟；需要更久就先挂断，约好时间回电。",
                     "Never keep the patient on hold for more than a minute; if you need longer, offer to call back."),
    "manners.speaker": ("不要使用免提，保护患者隐私，也让对方听得清楚。",
                        "Do not use the speakerphone: it exposes the patient's privacy and sounds distant."),
    "escalation_resolved": ("上报医生 {id} 已由 {user} 处理完毕。", "Escalation {id} resolved by {user}."),
    "escalation_resolved_late": ("上报医生 {id} 已由 {user} 处理完毕（已超过处理时限）。",
                                 "Escalation {id} resolved by {user} (after its deadline)."),
    "escalation_opened": ("已上报医生 {id}：{assignee}，请在 {due} 前处理。",
                          "Escalation {id} opened: {assignee}, due by {due}."),
    "escalation_acknowledged": ("上报医生 {id} 已由 {user} 确认收到，处理时限 {due}。",
                                "Escalation {id} acknowledged by {user}; due by {due}."),
    "no_assignee": ("未指定医生（请在站点配置 on_call_doctor）", "no doctor assigned (set the site's on_call_doctor)"),
    "escalation_needs_reason": ("上报医生需要写明原因：--reason \"……\"",
                                "an escalation needs a reason: --reason \"...\""),
    "unknown_severity": ("未知的紧急程度 {severity!r}（可选：{choices}）",
                         "unknown severity {severity!r} (choices: {choices})"),
    "escalation_not_yours": ("上报医生 {id} 由 {assignee} 负责，{user} 不能处理",
                             "escalation {id} is assigned to {assignee}, not {user}"),
    "escalation_unassigned": ("上报医生 {id} 尚未指定医生：须由医生确认或处理",
                              "escalation {id} has no assignee yet: a doctor must take it"),
    "due_by": ("时限 {due}", "due {due}"),
    "escalation_already_acknowledged": ("上报医生 {id} 已确认过", "escalation {id} was already acknowledged"),
    "no_escalation": ("上报医生记录 {id} 不存在", "no escalation {id}"),
    "escalation_already_resolved": ("上报医生 {id} 已由 {user} 处理过",
                                    "escalation {id} was already resolved by {user}"),
    "resolution_needs_text": ("请说明处理方式（--how）", "say how it was resolved (--how)"),
    "escalation_denied": ("上报医生 {id}：{error}", "escalation {id}: {error}"),
    "complaint_responded": ("投诉 {id} 已按时答复。", "Complaint {id} responded on time."),
    "complaint_responded_late": ("投诉 {id} 已答复（超过 3 天期限）。",
                                 "Complaint {id} responded (after the 3-day deadline)."),
    "complaint_closed": ("投诉 {id} 已结案。", "Complaint {id} closed."),
    "no_complaint": ("投诉 {id} 不存在", "no complaint {id}"),
    "complaint_is_closed": ("投诉 {id} 已结案", "complaint {id} is closed"),
    "complaint_already_closed": ("投诉 {id} 已经结案", "complaint {id} is already closed"),
    "complaint_not_responded": ("投诉 {id} 尚未答复：请先答复", "complaint {id} has no response yet: respond first"),
    "response_needs_text": ("答复内容不能为空（--text）", "a response needs text (--text)"),
    "complaint_denied": ("投诉 {id}：{error}", "complaint {id}: {error}"),
    "dnc_on": ("患者 {patient}：已设为勿扰，{n} 个待回访任务已屏蔽",
               "Patient {patient}: do not contact, {n} open task(s) suppressed"),
    "dnc_off": ("患者 {patient}：已恢复联系，{n} 个任务已重新开放",
                "Patient {patient}: contact allowed again, {n} task(s) reopened"),
    "dnc_already": ("患者 {patient} 已经设为勿扰", "patient {patient} is already marked do-not-contact"),
    "dnc_not_set": ("患者 {patient} 未设为勿扰", "patient {patient} is not marked do-not-contact"),
    "no_patient": ("患者 {patient!r} 不存在", "no patient {patient!r}"),
    # -- messages (SMS, WeChat, email) and the questionnaire
    "optout_on": ("患者 {patient}：不再接收 {channel} 消息", "Patient {patient}: no more {channel} messages"),
    "optout_off": ("患者 {patient}：恢复接收 {channel} 消息", "Patient {patient}: {channel} messages allowed again"),
    "optout_was_on": ("患者 {patient} 已经退订 {channel}", "patient {patient} has already opted out of {channel}"),
    "optout_was_off": ("患者 {patient} 未退订 {channel}", "patient {patient} has not opted out of {channel}"),
    "message_subject": ("{clinic}：{milestone}", "{clinic}: {milestone}"),
    "send_summary": ("新排队 {queued} 条；已发送 {sent}，稍后重试 {retried}，失败 {failed}，过期 {expired}，"
                     "明日再发 {postponed}，转电话回访 {fallbacks}",
                     "queued {queued}; sent {sent}, to retry {retried}, failed {failed}, expired {expired}, "
                     "tomorrow {postponed}, turned into calls {fallbacks}"),
    "send_dry_run": ("预演：以下 {n} 条消息现在会发送（未发送任何消息）",
                     "dry run: these {n} message(s) would be sent now (nothing was sent)"),
    "serving": ("问卷服务：http://{host}:{port}/q/<链接>（按 Ctrl+C 停止）",
                "questionnaire service at http://{host}:{port}/q/<token> (Ctrl+C stops it)"),
    "not_your_patient": ("患者 {patient} 不是 {sites} 的患者（{user} 在这些门店工作）",
                         "patient {patient} is not a patient of {sites} ({user} works there)"),
    # -- import and schedule
    "importing": ("正在导入 {file}", "importing {file}"),  # the progress bar's label
    "scheduling": ("正在排期", "scheduling"),
    "file_not_found": ("{file}：文件不存在", "{file}: file not found"),
    "imported": ("{file}：已导入 患者 新增 {pc}、更新 {pu}、未变 {pn}；就诊记录 新增 {ec}、更新 {eu}、未变 {en}",
                 "{file}: imported patients {pc} new, {pu} updated, {pn} unchanged; "
                 "episodes {ec} new, {eu} updated, {en} unchanged"),
    "would_import": ("{file}：试运行（未写入）患者 新增 {pc}、更新 {pu}、未变 {pn}；"
                     "就诊记录 新增 {ec}、更新 {eu}、未变 {en}",
                     "{file}: would import patients {pc} new, {pu} updated, {pn} unchanged; "
                     "episodes {ec} new, {eu} updated, {en} unchanged"),
    "template_exists": ("{path} 已存在：未覆盖（请换一个文件名）",
                        "{path} already exists: not overwritten (give another FILE)"),
    "template_written": ("已写入空白导入模板 {file}（{n} 列；列名见 docs/import.md）",
                         "wrote the empty import template {file} ({n} columns; see docs/import.md)"),
    "next_schedule": ("下一步：followup schedule", "Next: followup schedule"),
    "import_failed_one": ("{file} 有 {n} 个问题，未导入任何数据：", "{n} problem in {file}; nothing was imported:"),
    "import_failed": ("{file} 有 {n} 个问题，未导入任何数据：", "{n} problems in {file}; nothing was imported:"),
    "import_row": ("第 {row} 行", "row {row}"),
    "import_whole_file": ("文件", "file"),
    "import_missing": ("缺少必填值", "required value is missing"),
    "import_too_long": ("超过 {n} 个字符", "longer than {n} characters"),
    "import_unknown_episode_status": ("无法识别的就诊状态 {text!r}（可用：{choices}）",
                                      "unknown episode status {text!r} (use one of: {choices})"),
    "import_not_yes_no": ("{text!r} 不是 是/否（请填 yes/no、true/false、是/否 或 1/0）",
                          "{text!r} is not yes/no (use yes/no, true/false, 是/否 or 1/0)"),
    "import_not_gender": ("{text!r} 不是性别（请填 F/M、female/male 或 女/男）",
                          "{text!r} is not a gender (use F/M, female/male or 女/男)"),
    "import_not_date": ("不是日期（请写成 YYYY-MM-DD）", "not a date (write it as YYYY-MM-DD)"),
    "import_birth_implausible": ("出生日期不合理（在未来或早于 1880 年）",
                                 "not a plausible birth date (in the future or before 1880)"),
    "import_phone_characters": ("电话号码只能包含数字、开头的 +、空格、短横线或括号",
                                "a phone number holds digits, an optional leading +, spaces, dashes or brackets"),
    "import_phone_digits": ("电话号码应有 7 到 15 位数字，这个有 {n} 位",
                            "a phone number has 7 to 15 digits, this one has {n}"),
    "import_phone_invalid": ("不是有效的电话号码：手机为 1 开头的 11 位数字，固话需带区号（如 010-12345678），"
                             "境外号码请写 +国家代码（如 +852…）；确需导入请加 --allow-invalid-phone",
                             "not a valid phone number: a mainland mobile has 11 digits starting with 1, "
                             "a landline needs its area code (010-12345678), a foreign number its +country code; "
                             "to import it anyway, use --allow-invalid-phone"),
    "import_bad_call_time": ("无法识别的方便接听时间 {text!r}（请写 18:00-20:00，或 上午、下午、傍晚、晚上；"
                             "需在 08:00–21:00 之间）",
                             "unreadable preferred call time {text!r} (write 18:00-20:00, or morning, afternoon, "
                             "after work, evening; between 08:00 and 21:00)"),
    "import_unknown_locale": ("未知的语言 {text!r}（请填 zh_CN 或 en）", "unknown locale {text!r} (use zh_CN or en)"),
    "import_unknown_patient": ("患者 {patient!r} 既不在数据库中，也不在此文件中",
                               "patient {patient!r} is neither in the database nor in this file"),
    "did_you_mean": ("，是否想输入 {suggestion!r}？", " — did you mean {suggestion!r}?"),
    "import_unknown_site": ("未知门店 {site!r}{hint}（门店：{sites}）", "unknown site {site!r}{hint} (sites: {sites})"),
    "import_unknown_specialty": ("未知专科 {specialty!r}{hint}（已安装：{installed}）",
                                 "unknown specialty {specialty!r}{hint} (installed: {installed})"),
    "import_unknown_specialty_none": ("未知专科 {specialty!r}{hint}（未安装任何专科）",
                                      "unknown specialty {specialty!r}{hint} (installed: none)"),
    "import_specialty_not_enabled": ("门店 {site} 未开通专科 {specialty!r}（已开通：{enabled}）",
                                     "specialty {specialty!r} is not enabled at site {site} (enabled: {enabled})"),
    "import_unknown_procedure": ("专科 {specialty} 没有项目 {procedure!r}{hint}（可选项目：{procedures}）",
                                 "unknown procedure {procedure!r} for {specialty}{hint} (procedures: {procedures})"),
    "import_not_datetime": ("{text!r} 不是日期时间（请写成 ISO 8601：2026-03-01 09:00 或 2026-03-01T09:00+08:00）",
                            "{text!r} is not a date and time "
                            "(write ISO 8601: 2026-03-01 09:00, or 2026-03-01T09:00+08:00)"),
    "import_duplicate": ("{column} {key!r} 再次出现，内容与第 {first} 行不同",
                         "{column} {key!r} appears again with different content (first at row {first})"),
    "import_duplicate_in_sheet": ("{column} {key!r} 再次出现，内容与 {sheet} 第 {first} 行不同",
                                  "{column} {key!r} appears again with different content "
                                  "(first at row {first} of {sheet})"),
    "import_no_column": ("缺少 {column!r} 列（导入{kind}必需）", "no {column!r} column (needed for {kind})"),
    "import_kind.patients": ("患者", "patients"),
    "import_kind.episodes": ("就诊记录", "episodes"),
    # -- import: the file's headers and the file itself
    "import_unknown_mapping": ("门店 {site} 把列名 {header!r} 对应到未知的列 {column!r}{hint}",
                               "site {site} maps header {header!r} to unknown column {column!r}{hint}"),
    "import_mapping_conflict": ("列名 {header!r} 被门店 {other} 对应到 {previous!r}，又被门店 {site} 对应到 {column!r}",
                                "header {header!r} is mapped to {previous!r} by site {other} "
                                "and to {column!r} by site {site}"),
    "import_same_column": ("列 {first!r} 和 {second!r} 都表示 {column!r}：请删除或重命名其中一列",
                           "columns {first!r} and {second!r} both mean {column!r}; remove or rename one"),
    "import_not_text": ("文件既不是 UTF-8 也不是 GB18030 文本：请另存为 UTF-8 CSV",
                        "the file is neither UTF-8 nor GB18030 text: save it as UTF-8 CSV"),
    "import_bad_csv_row": ("无法按 CSV 读取此行（{error}）：是否有引号未闭合？",
                           "cannot read this row as CSV ({error}): is a quote left open?"),
    "import_empty_file": ("文件是空的", "the file is empty"),
    "import_bad_workbook": ("无法打开工作簿：{error}", "cannot open the workbook: {error}"),
    "import_bad_json": ("不是有效的 JSON（第 {line} 行）：{error}", "not valid JSON (line {line}): {error}"),
    "import_json_shape": ('JSON 文件应为行对象的列表，或 {{"patients": [...], "episodes": [...]}}',
                          'a JSON file holds a list of row objects or {{"patients": [...], "episodes": [...]}}'),
    "import_json_not_list": ("{part!r} 必须是行对象的列表", "{part!r} must be a list of row objects"),
    "import_not_row_object": ("不是行对象", "not a row object"),
    "import_xls": ("不读取旧版 .xls 工作簿：请另存为 .xlsx 或 .csv",
                   "old .xls workbooks are not read: save it as .xlsx or .csv"),
    "import_unknown_file_type": ("未知的文件类型 {suffix!r}：请使用 .csv、.xlsx 或 .json",
                                 "unknown file type {suffix!r}: use .csv, .xlsx or .json"),
    "import_no_file_type": ("文件没有扩展名：请使用 .csv、.xlsx 或 .json",
                            "unknown file type '(none)': use .csv, .xlsx or .json"),
    # -- import: warnings about a file that was imported
    "warning": ("警告：{warning}", "Warning: {warning}"),
    "import_columns_ignored": ("已忽略未知的列：{columns}", "columns ignored (not known): {columns}"),
    "import_sheet_ignored": ("已忽略工作表 {sheet!r}：第一行没有可识别的列名",
                             "sheet {sheet!r} ignored: its first row names no known column"),
    "import_phones_flagged": ("{n} 个电话号码无效，已照原样导入并标记为待更正（第 {rows} 行）",
                              "{n} invalid phone number(s) imported as given and flagged for correction "
                              "(rows {rows})"),
    "import_rows_repeated": ("{n} 行与文件中前面的行完全相同，只计一次",
                             "{n} rows repeat an earlier row of the file and were counted once"),
    "scheduled": ("{episodes} 个就诊记录：新建任务 {created} 个，调整 {moved} 个，取消 {cancelled} 个，"
                  "保持不变 {existing} 个",
                  "{episodes} episodes: {created} tasks created, {moved} moved, {cancelled} cancelled, "
                  "{existing} left as they were"),
    "scheduled_dry_run": ("（试运行：未写入任何内容）", " (dry run: nothing written)"),
    "scheduled_expired": ("，已过期 {n} 个（排期前回访窗口已关闭）", ", {n} expired (window closed before scheduling)"),
    "scheduled_suppressed": ("，已屏蔽 {n} 个（勿扰）", ", {n} suppressed (do not contact)"),
    "scheduled_provisional": ("，暂定 {n} 个（节假日安排尚未公布）",
                              ", {n} provisional (holiday data not yet published)"),
    "replanned": ("已重新安排 {n} 个暂定任务", "re-placed {n} provisional task(s)"),
}


# -- access, privacy and the audit chain (docs/security.md)
MESSAGES.update({
    "patient_exported": ("患者 {patient} 的全部数据已写入 {file}（仅本人可读）",
                         "everything held about patient {patient} written to {file} (readable by you only)"),
    "patient_erased": ("患者 {patient} 已匿名化：姓名、电话、出生日期和自由文本已删除，{n} 个待回访任务已屏蔽",
                       "patient {patient} erased: name, phone, birth date and free text removed, "
                       "{n} open task(s) suppressed"),
    "erase_needs_reason": ("请说明匿名化的原因（--reason）", "say why the patient is erased (--reason)"),
    "erase_open_items": ("患者 {patient} 还有未结的 {items}：请先处理完毕再匿名化",
                         "patient {patient} still has {items} open: close them before erasing"),
    "import_hidden_char": ("含有隐藏或改变文字方向的字符 {code}（零宽空格、从右到左覆盖等）：请删除",
                           "holds a hidden or direction-changing character {code} (zero-width space, "
                           "right-to-left override...): remove it"),
    "import_control_char": ("含有控制字符 {code}（例如 NUL 字节）：请删除", "holds a control character {code} "
                            "(such as a NUL byte): remove it"),
    "import_date_implausible": ("{text!r} 不是合理的就诊日期（早于 1900 年，或晚于今天 {days} 天以上）",
                                "{text!r} is not a plausible episode date (before 1900, or more than {days} days "
                                "ahead)"),
    "import_no_rows": ("{file} 只有表头，没有数据行：未导入任何数据",
                       "{file} has a header but no rows: nothing imported"),
    "answer_repeated": ("--answer {key} 出现了两次（{first!r} 和 {second!r}）：每个问题只能回答一次",
                        "--answer {key} is given twice ({first!r} and {second!r}): answer each question once"),
    "text_too_long": ("{option} 超过 {n} 个字符（共 {length} 个）",
                      "{option} is longer than {n} characters ({length})"),
    "text_control_char": ("{option} 含有控制字符（例如 NUL 字节）",
                          "{option} holds a control character (such as a NUL byte)"),
    "config_staff": ("员工 {n} 人：{roles}", "{n} staff: {roles}"),
    "config_single_user": ("单用户模式：没有员工名单，运行 followup 的人可以做任何操作",
                           "single-user: no staff list, whoever runs followup may do everything"),
    "role.coordinator": ("回访专员", "coordinator"),
    "role.doctor": ("医生", "doctor"),
    "role.manager": ("主管", "manager"),
    "role.admin": ("管理员", "admin"),
    "as_reserved": ("{user!r} 不是员工的名字：只有系统本身以它的身份操作", "{user!r} is no staff member's name: "
                    "only followup itself acts as it"),
    "as_refused": ("您以 {os_user} 登录：只有管理员才能用 --as 代表 {user} 操作（{path} 未设置 allow_as）",
                   "you are {os_user}: only an admin may act as {user} with --as ({path} does not set allow_as)"),
    "now_refused": ("--now {now}：会写入数据的命令不能设定时钟（{path} 未设置 allow_now）",
                    "--now {now}: commands that write cannot set the clock ({path} does not set allow_now)"),
    "role_denied": ("{user}（{role}）无权{what}", "{user} ({role}) may not {what}"),
    "not_assigned": ("上报医生 {id} 未分配给 {user}", "escalation {id} is not assigned to {user}"),
    "access.tasks:read": ("查看回访任务", "see follow-up tasks"),
    "access.calls": ("领取、查看或记录回访电话", "claim, prepare or record calls"),
    "access.escalations:read": ("查看上报医生记录", "see escalations"),
    "access.escalations:resolve": ("处理上报医生记录", "resolve escalations"),
    "access.complaints:read": ("查看投诉", "see complaints"),
    "access.complaints:answer": ("答复或结案投诉", "answer or close complaints"),
    "access.patients:dnc": ("设置勿扰", "change do-not-contact"),
    "access.patients:optout": ("设置退订", "change a patient's message opt-outs"),
    "access.patients:export": ("导出患者的全部数据", "export a patient's data"),
    "access.patients:erase": ("匿名化患者", "erase a patient"),
    "access.audit:read": ("查看审计日志", "read the audit log"),
    "access.reports": ("查看报表", "read reports"),
    "access.qa:review": ("抽查评分通话", "review and score calls"),
    "access.import": ("导入数据", "import data"),
    "access.schedule": ("排期", "schedule follow-ups"),
    "audit_intact": ("审计日志完整：{n} 条记录，链尾 {head}", "audit log intact: {n} rows, head {head}"),
    "audit_unsealed": ("另有 {n} 条记录在核对期间写入，尚未入链（下一次写入审计日志时入链）",
                       "{n} more rows were written while checking and are not chained yet (the next audited "
                       "write chains them)"),
    "audit_edited": ("审计日志被篡改：第 {id} 条记录的内容被修改（之前 {n} 条完好）",
                     "audit log tampered with: row {id} was edited ({n} rows before it are intact)"),
    "audit_inserted": ("审计日志被篡改：第 {id} 条记录是后来插入的（之前 {n} 条完好）",
                       "audit log tampered with: row {id} was inserted out of order ({n} rows before it are intact)"),
    "audit_removed": ("审计日志被篡改：第 {id} 条记录之前有记录被删除（之前 {n} 条完好）",
                      "audit log tampered with: rows were removed before row {id} ({n} rows before it are intact)"),
})


# -- call history loaded in bulk (core/callhistory.py)
MESSAGES.update({
    "history_no_task": ("没有编号为 {id} 的回访任务", "there is no follow-up task {id}"),
    "history_task_closed": ("任务 {id} 已结束（{status}）：不能再载入它的通话",
                            "task {id} is already closed ({status}): its calls cannot be loaded"),
    "history_in_future": ("通话时间 {at} 不在过去（现在是 {now}），或没有时区",
                          "call time {at} is not in the past (now {now}) or has no timezone"),
    "history_unknown_caller": ("{user!r} 不在员工名单中", "{user!r} is not on the staff list"),
    "history_after_closed": ("任务 {id} 已在第 {row} 行的通话中结束：之后不能再有通话",
                             "task {id} was closed by the call on row {row}: no call can follow it"),
    "history_already_recorded": ("任务 {id} 在 {at} 的通话已经记录过（这个文件是否已导入？）：同一通话不能载入两次",
                                 "task {id}: the call at {at} is already recorded (was this file loaded before?)"),
    "history_given_up_without_calls": ("任务 {id} 标记为放弃，但没有它的通话",
                                       "task {id} is marked given up but has no calls"),
    "history_loaded": ("已载入 {attempts} 次通话、{answers} 条回答，涉及 {tasks} 个任务",
                       "loaded {attempts} call(s) and {answers} answer(s) of {tasks} task(s)"),
    # -- a call-history file (core/historyfile.py, followup import)
    "import_kind.calls": ("通话记录", "a call history"),
    "history_not_task_id": ("{text!r} 不是任务编号（应为数字）", "{text!r} is not a task id (a number)"),
    "history_which_task": ("缺少任务：请填任务编号，或就诊编号加回访节点",
                           "which task? give task_id, or episode_id with milestone"),
    "history_no_task_of_episode": ("就诊 {episode!r} 没有回访节点 {milestone!r} 的任务",
                                   "episode {episode!r} has no task for milestone {milestone!r}"),
    "history_answers_not_object": ("回答应为 JSON 对象，如 {{\"overall_satisfaction\": 5}}",
                                   "answers must be a JSON object, e.g. {{\"overall_satisfaction\": 5}}"),
    "calls_imported": ("{file}：已导入 {attempts} 次通话、{answers} 条回答，涉及 {tasks} 个任务（{statuses}）",
                       "{file}: imported {attempts} call(s) and {answers} answer(s) of {tasks} task(s) ({statuses})"),
    "calls_would_import": ("{file}：试运行（未写入）将导入 {attempts} 次通话、{answers} 条回答，"
                           "涉及 {tasks} 个任务（{statuses}）",
                           "{file}: would import {attempts} call(s) and {answers} answer(s) of {tasks} task(s) "
                           "({statuses})"),
})


def os_error(exc: OSError) -> Any:
    """Why a file could not be written, as a catalogue message when it is a common reason."""
    import errno

    name = errno.errorcode.get(exc.errno or 0, "")
    return Msg(f"os.{name}") if f"os.{name}" in MESSAGES else (exc.strerror or str(exc))


def message(key: str, locale: str | None, /, **values: Any) -> str:
    """The catalogue text ``key`` in ``locale`` (English unless zh_CN); values that are messages are rendered too."""
    zh, en = MESSAGES[key]
    text = zh if locale == "zh_CN" else en
    return text.format(**{k: localize(v, locale) if _renders(v) else v for k, v in values.items()})


def localize(value: Any, locale: str | None) -> str:
    """A :class:`Msg`, :class:`Joined` or error in ``locale``; anything else as ``str()``."""
    return value.render(locale) if _renders(value) else str(value)


def _renders(value: Any) -> bool:
    return callable(getattr(value, "render", None))


class Msg:
    """A catalogue message not yet rendered: the key and its values. ``str()`` is the English text."""

    __slots__ = ("key", "values")

    def __init__(self, key: str, /, **values: Any) -> None:
        if key not in MESSAGES:
            raise KeyError(f"no message {key!r} in core.messages.MESSAGES")
        self.key, self.values = key, values

    def render(self, locale: str | None) -> str:
        return message(self.key, locale, **self.values)

    def __str__(self) -> str:
        return self.render(FALLBACK)

    def __repr__(self) -> str:
        return f"Msg({self.key!r}, **{self.values!r})"


class Joined:
    """Several messages shown as one: joined by '；' in Chinese and '; ' in English."""

    __slots__ = ("parts",)

    def __init__(self, parts: Sequence[Any]) -> None:
        self.parts = list(parts)

    def render(self, locale: str | None) -> str:
        return ("；" if locale == "zh_CN" else "; ").join(localize(p, locale) for p in self.parts)

    def __str__(self) -> str:
        return self.render(FALLBACK)


def ui_locale(option: str | None, staff: Any, default: str | None) -> str:
    """The language a user reads: ``--locale``, else the staff member's own, else the chain's, else English."""
    return option or getattr(staff, "locale", None) or default or FALLBACK


def placeholders(text: str) -> set[str]:
    """The names a catalogue text fills in (``{id}``, ``{outcome!r}`` -> ``id``, ``outcome``)."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}
