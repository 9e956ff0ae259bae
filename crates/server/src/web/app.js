// The web client: the reference client's commands in a page, over the server's own
// WebSocket (/ws), one JSON message of the TCP JSON format per text message
// (docs/PROTOCOL.md §6.10).
//
// What it does: opts in to six extensions with one CSHello per connection (§7):
// "rooms", so the room list is pushed when it changes instead of polled (§7.1);
// "history", so entering a room shows its last chats, marked as earlier ones, and
// "이전 메시지 더 보기" (or /history more) pages further back (§7.3); "accounts" and
// "resume", so that where the server keeps accounts (not with --no-store) an account
// panel logs in, registers the current name, logs out and changes the password, and
// the login survives a reload or a reconnect (§7.2, §7.4); "direct", so that /msg,
// /ignore and /unignore work and direct messages show as 귓속말 lines wherever the
// user is, in a room or not (§7.5); "moderation", so that /op, /deop, /owner, /kick,
// /ban, /unban and /topic work and the current room's topic is shown (§7.6). A log
// that follows new lines unless the user scrolled up (then a "새 메시지" chip); each
// line's time, the server's when it gives one; a name field and a room list, patched
// in place, where a click switches rooms; the chosen name and the current room kept
// in localStorage and restored after a reload or a reconnect, without showing a line
// twice; an unread count in the tab title while the tab is hidden; a room panel that
// folds away on a phone. Own chats are shown only once the server has accepted them
// (see `request`).
//
// Accounts: the server's SCSession token (never a password) is kept in localStorage
// as { name, token, expires }; after a (re)connect CSResume with it comes first, before
// the name and the room are restored. A token the server refuses is dropped and the
// login form shown; /logout drops it; a password change replaces it. Rooms created
// while logged in are the account's (§7.2): the page remembers which (per account, by
// the server's "N번 방이 내 계정에 등록되었습니다." — it cannot learn of rooms registered
// from elsewhere), marks them "내 방" in the list and offers a two-step delete. Typed
// passwords (/login, /register, /password) are shown only as ********; password fields
// are emptied as they are sent.
//
// Direct messages (§7.5): an SCDirect is a line of its own kind, "귓속말" badge, an
// arrow (← received, → sent; for screen readers "받음, 보낸 사람" / "보냄, 받는 사람"),
// the other party's name and the text. One's own is shown only as the server's copy,
// which it sends once it delivered the message (a refusal comes as a system message
// instead). The name on a received one is a button that puts "/msg NAME " in the
// input. Ignoring is the server's, for this connection only: a reload or a reconnect
// ends it (the page does not send the list again).
//
// Moderation (§7.6): the commands go as typed (the server says who may, and answers
// each with a system message). The current room's topic (SCTopic, on entry and when
// it changes) is shown under the room in the header, a change as a line of its own in
// the log (one's own change only as the server's answer); the room list shows each
// room's topic under its title. A member kicked (or banned while in the room) is told
// "[BY] 님이 나를 방에서 내보냈습니다." and is in no room from then on: the page
// leaves the room state as on /leave, without sending anything.
//
// What it does not do: show anything as HTML: everything shown is set with
// textContent, nothing from the server or a peer is ever parsed as markup.
"use strict";

const $ = (id) => document.getElementById(id);
const log = $("log");
const logWrap = $("log-wrap");
const input = $("input");
const chip = $("new-messages");
const older = $("older");
const roomList = $("rooms");

const TITLE = "채팅";
const POLL_MS = 3000; // only if the server does not push the room list (no "rooms" in SCHello)
const MAX_LINES = 2000;
const BOTTOM_SLACK = 24; // px: more than the log's bottom padding, less than a line
const FEATURES = ["rooms", "history", "accounts", "resume", "direct", "moderation"]; // asked for once per connection (§7)
const HISTORY_PAGE = 50; // lines per "이전 메시지 더 보기" (the server allows 1 to 200, §7.3)
const FRAME_MAX = 65535; // the most a message may hold (§1)
const STORE_NAME = "chat.name";
const STORE_ROOM = "chat.room";
const STORE_LOGIN = "chat.login"; // { name, token, expires }: the SCSession of §7.4, never a password
const STORE_OWNED = "chat.owned"; // [{ account, rooms: [ids] }]: rooms registered from this browser
const MASK = "********"; // a typed password as the log shows it
const CONFIRM_MS = 5000; // how long a room's delete button waits for its second click

// The server's answers to self that the page acts on (PROTOCOL.md §4.3, §6, §7.3).
const RENAMED = /^이름이 (.*) 으로 변경되었습니다\.$/;
const ENTERED = /^방제\[(.*)\] 방에 입장했습니다\.$/;
const LEFT = /^방제\[(.*)\] 대화 방에서 퇴장했습니다\.$/;
const NOT_IN_ROOM = "현재 대화방에 들어가 있지 않습니다.";
const NAME_TAKEN = "이미 쓰이고 있는 이름이거나 그와 헷갈리는 이름입니다.";
const HISTORY_OFF = "대화 기록을 보려면 먼저 CSHello 로 history 기능을 켜야 합니다.";
const HISTORY_BAD = "대화 기록은 한 번에 1줄부터 200줄까지, 1번 줄 이후로 요청할 수 있습니다.";
// Accounts (§7.2, §7.4).
const LOGGED_IN = /^(.*) 으로 로그인했습니다\.$/;
const REGISTERED = /^이름 (.*) 을 계정으로 등록했습니다\. 이제 이 이름은 로그인해야 쓸 수 있습니다\.$/;
const LOGGED_OUT = "로그아웃했습니다.";
const NOT_LOGGED_IN = "로그인하지 않았습니다.";
const PASSWORD_CHANGED = "비밀번호를 바꿨습니다.";
const RESUME_FAILED = "저장된 로그인이 만료되었거나 맞지 않습니다. 비밀번호로 다시 로그인하세요.";
const NAME_REGISTERED = "등록된 이름입니다. /login 으로 로그인해야 쓸 수 있습니다.";
const ACCOUNTS_OFF = "이 서버에서는 계정을 쓸 수 없습니다."; // the server's own words for it
const ROOM_REGISTERED = /^(\d+)번 방이 내 계정에 등록되었습니다\. /;
const ROOM_DELETED = /^(\d+)번 방을 지웠습니다\.$/;
const ROOM_UNREGISTERED = /^(\d+)번 방의 등록을 풀었습니다\. /;
const NOT_ROOM_OWNER = "내 계정에 등록된 방이 아닙니다.";
const NO_SUCH_ROOM = "대화방이 존재하지 않습니다.";
// Direct messages (§7.5).
const DIRECT_OFF = "이 서버에서는 귓속말을 쓸 수 없습니다."; // no "direct" in SCHello
// Moderation (§7.6). A kicked member's notice: BY is a name (no brackets); a ban of
// one in the room kicks it with the same words, without a reason.
const KICKED = /^\[[^[\]]*\] 님이 나를 방에서 내보냈습니다\.(?: 이유: [\s\S]*)?$/u;
const OWNER_CHANGED = /^이제 (.*) 님이 이 방의 방장입니다\.$/;
const MODERATION_OFF = "이 서버에서는 방 관리 기능을 쓸 수 없습니다."; // no "moderation" in SCHello
// Every answer that means a chat went to nobody (§4.3, §6.1, §6.4, §6.9).
const CHAT_REFUSALS = new Set([
  NOT_IN_ROOM,
  "메시지가 너무 깁니다.",
  "지금은 요청을 처리할 수 없습니다. 잠시 후 다시 시도해 주세요.",
  "클러스터 연결이 끊겨 방금 보낸 메시지가 전달되지 않았을 수 있습니다.",
]);
const isChatRefusal = (text) => CHAT_REFUSALS.has(text) || text.startsWith("잘못된 메시지입니다: ");
// Every answer to a CSHistory but a page (§7.3).
const HISTORY_REFUSALS = new Set([
  HISTORY_OFF,
  NOT_IN_ROOM,
  HISTORY_BAD,
  "지금은 요청을 처리할 수 없습니다. 잠시 후 다시 시도해 주세요.",
]);

const HELP = [
  "이 페이지가 아는 명령어:",
  "/help — 이 도움말을 봅니다.",
  "/name 이름 — 채팅 이름을 바꿉니다.",
  "/rooms — 방 목록을 봅니다.",
  "/create 제목 — 방을 만들고 들어갑니다.",
  "/join 번호 — 그 번호의 방에 들어갑니다.",
  "/leave — 지금 있는 방에서 나갑니다.",
  "/history [줄 수] — 지금 방의 최근 대화를 가져옵니다 (기본 50줄, 최대 200줄).",
  "/history more — 화면에 있는 것보다 앞의 대화를 가져옵니다.",
  "/shutdown — 서버를 종료합니다 (권한이 있을 때만).",
  "/로 시작하지 않는 줄은 지금 있는 방에 보내는 메시지입니다.",
];
const ACCOUNT_HELP = [
  "계정 명령어 (비밀번호는 로그에 ******** 로만 보입니다):",
  "/register 비밀번호 — 지금 이름을 계정으로 등록합니다 (비밀번호 8자 이상).",
  "/login 이름 비밀번호 — 계정에 로그인해 그 이름을 씁니다.",
  "/logout — 계정에서 로그아웃합니다.",
  "/password 지금비밀번호 새비밀번호 — 비밀번호를 바꿉니다.",
  "/delete 번호 — 내 계정에 등록된 그 번호의 방을 지웁니다 (멤버가 있으면 모두 나간 뒤에 사라집니다).",
];
const DIRECT_HELP = [
  "귓속말 명령어 (방에 있든 없든 그 사람에게만 갑니다):",
  "/msg 이름 내용 — 그 이름으로 접속한 사람에게 귓속말을 보냅니다 (먼저 /name 으로 이름을 정해야 합니다; 띄어쓰기가 있는 이름은 \"이름\" 처럼 따옴표로 묶습니다).",
  "/ignore 이름 — 그 사람의 귓속말을 받지 않습니다 (이 연결 동안; 새로고침하면 풀립니다).",
  "/unignore 이름 — 그 사람의 귓속말을 다시 받습니다.",
  "받은 귓속말의 보낸 사람 이름을 누르면 입력창에 /msg 이름 이 채워집니다.",
];
const MODERATION_HELP = [
  "방 관리 명령어 (계정에 등록된 방에서, 지금 있는 방에 적용됩니다; 띄어쓰기가 있는 이름은 \"이름\" 처럼 따옴표로 묶습니다):",
  "/op 이름 — 그 계정을 이 방의 운영자로 정합니다 (방장만).",
  "/deop 이름 — 그 계정을 운영자에서 뺍니다 (방장만).",
  "/owner 이름 — 방을 그 계정에 넘기고 나는 운영자가 됩니다 (방장만).",
  "/kick 이름 [이유] — 그 사람을 방에서 내보냅니다 (방장과 운영자).",
  "/ban 이름 [분] — 그 사람을 방에서 밴합니다; 분을 쓰지 않으면 풀 때까지입니다 (방장과 운영자).",
  "/unban 이름 — 그 이름의 밴을 풉니다 (방장과 운영자).",
  "/topic [주제] — 방 주제를 정합니다; 주제 없이 쓰면 지웁니다 (방장과 운영자, 200자까지).",
];

let socket = null;
let backoff = 500;
let pollTimer = null;
let pollInFlight = false;
let pushed = false; // the server pushes the room list to this connection (§7.1)
let granted = new Set(); // the features the server's SCHello put in force (§7)
let suggestedAccount = ""; // for the login form's name: the account last used here
let restoring = Promise.resolve(); // the name and room being restored after a (re)connect
// Only what the server confirmed; `topic` is the current room's ("" for none, §7.6).
let me = { name: null, room: null, roomId: null, account: null, topic: "" };
let backlog = { roomId: null, more: false, loading: false }; // the current room's older chats
let unread = 0;
let listUpdates = 0;
const roomItems = new Map(); // room id -> { li, button, title, topic, members, here, … }
// What a chat line in the log says, to tell a line the server sends again (history
// after a reconnect) from a new one: { member, text }, or { own, name, text } for
// one's own chats (shown as sent: the server tells the sender no number).
const said = new WeakMap();

// ---- the log ---------------------------------------------------------------------

function atBottom() {
  return logWrap.scrollHeight - logWrap.scrollTop - logWrap.clientHeight <= BOTTOM_SLACK;
}

function scrollToBottom() {
  logWrap.scrollTop = logWrap.scrollHeight;
  chip.hidden = true;
}

function two(n) {
  return String(n).padStart(2, "0");
}

// HH:MM of local time, with the date in front if it is not today; `ms` is the
// server's time (ms since the epoch) when a message carries one, else the time it
// arrived.
function timeElement(ms) {
  const date = new Date(ms);
  const el = document.createElement("time");
  el.dateTime = date.toISOString();
  const hhmm = two(date.getHours()) + ":" + two(date.getMinutes());
  const today = date.toDateString() === new Date().toDateString();
  el.textContent = today ? hhmm : date.getMonth() + 1 + "월 " + date.getDate() + "일 " + hhmm;
  return el;
}

// One line, not yet in the log. `earlier` marks a chat from before one came in.
function line(kind, text, { who, time, earlier } = {}) {
  const li = document.createElement("li");
  li.className = kind;
  li.append(timeElement(Number.isFinite(time) ? time : Date.now()), " ");
  if (earlier) {
    const badge = document.createElement("span");
    badge.className = "earlier";
    badge.textContent = "이전";
    li.append(badge, " ");
  }
  if (who !== undefined) {
    const name = document.createElement("span");
    name.className = "who";
    name.textContent = who;
    li.append(name, document.createTextNode(": " + text));
  } else {
    li.append(document.createTextNode(text));
  }
  return li;
}

// Appends one line. Whether to follow is decided before the line changes the height.
function append(li) {
  const follow = atBottom();
  log.append(li);
  while (log.children.length > MAX_LINES) log.firstElementChild.remove();
  if (follow) scrollToBottom();
  else chip.hidden = false;
  return li;
}

function show(kind, text, options) {
  return append(line(kind, text, options));
}

function span(className, text) {
  const el = document.createElement("span");
  el.className = className;
  el.textContent = text;
  return el;
}

// ---- direct messages (§7.5) -------------------------------------------------------

// A name as /msg and /ignore take it: as it is, or in quotes if it has a space.
function quoteName(name) {
  return /\s/u.test(name) ? '"' + name + '"' : name;
}

// "/msg NAME TEXT"'s NAME and TEXT from what follows the command: the first word, or
// a name in double quotes (names may hold spaces). TEXT may be "".
function splitName(rest) {
  const quoted = /^"([^"]+)"(?:\s+|$)/u.exec(rest);
  if (quoted) return { name: quoted[1], text: rest.slice(quoted[0].length) };
  const word = /^(\S+)(?:\s+|$)/u.exec(rest);
  return word ? { name: word[1], text: rest.slice(word[0].length) } : { name: "", text: "" };
}

// A command's NAME that is the rest of the line (/ignore, /op, /unban, …): as it is,
// or without the double quotes around it.
function restName(rest) {
  return /^"[^"]+"$/u.test(rest) ? rest.slice(1, -1) : rest;
}

// Puts "/msg NAME " in the input, to answer NAME.
function replyTo(name) {
  input.value = "/msg " + quoteName(name) + " ";
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

// An SCDirect as a line: "HH:MM [귓속말] ← NAME: TEXT" received, "→ NAME" sent; the
// arrow is read as words, and a received one's NAME is a button to answer it.
function directLine(msg) {
  const outgoing = msg.outgoing === true;
  const li = document.createElement("li");
  li.className = "direct " + (outgoing ? "out" : "in");
  li.append(timeElement(Number.isFinite(msg.time) ? msg.time : Date.now()), " ", span("dm", "귓속말"));
  const arrow = span("arrow", outgoing ? " → " : " ← ");
  arrow.setAttribute("aria-hidden", "true");
  li.append(arrow, span("visually-hidden", outgoing ? " 보냄, 받는 사람 " : " 받음, 보낸 사람 "));
  let who;
  if (outgoing) {
    who = span("who", msg.member);
  } else {
    who = document.createElement("button");
    who.type = "button";
    who.className = "who";
    who.textContent = msg.member;
    who.title = msg.member + " 님에게 답장 (/msg " + quoteName(msg.member) + ")";
    who.addEventListener("click", () => replyTo(msg.member));
  }
  li.append(who, document.createTextNode(": " + msg.text));
  return li;
}

// ---- chats by their number in the room (§7.3) ------------------------------------

// A chat line's place in its room's history: data-room and data-seq, the server's
// numbers (integers: checked before they go into a selector).
function number(li, roomId, seq) {
  if (!Number.isSafeInteger(roomId) || !Number.isSafeInteger(seq)) return;
  li.dataset.room = String(roomId);
  li.dataset.seq = String(seq);
}

function linesOf(roomId) {
  return log.querySelectorAll(`li[data-room="${roomId}"]`);
}

function isMine(li, chat) {
  const mine = said.get(li);
  if (!mine?.own || mine.text !== chat.text) return false;
  // A default name (IP, PORT) changes with the connection; a chosen one is ours.
  return mine.name === null ? chat.member.startsWith("(") : mine.name === chat.member;
}

// Puts one line of the room's history in the log, among the room's lines in number
// order, unless the log shows it already: a line kept from before a reconnect, or
// one's own chat (shown unnumbered), which gets its number instead. Answers the new
// line, or null.
function addHistory(roomId, chat) {
  if (!Number.isSafeInteger(roomId) || !Number.isSafeInteger(chat?.seq)) return null;
  if (typeof chat.member !== "string" || typeof chat.text !== "string") return null;
  let there = [...linesOf(roomId)];
  const same = there.find((li) => li.dataset.seq === String(chat.seq));
  if (same) {
    const was = said.get(same);
    if (was && was.member === chat.member && was.text === chat.text) return null;
    // The same number, other words: a new room under an old id (the server was
    // restarted). The old lines lose their numbers.
    there.forEach((li) => {
      delete li.dataset.room;
      delete li.dataset.seq;
    });
    there = [];
  }
  // The first numbered line after it, and an own unnumbered line since the last
  // numbered line before it that says the same.
  let next = null;
  let mine = null;
  for (const li of there) {
    if (li.dataset.seq === undefined) {
      if (!mine && isMine(li, chat)) mine = li;
    } else if (Number(li.dataset.seq) > chat.seq) {
      next = li;
      break;
    } else {
      mine = null;
    }
  }
  if (mine) {
    number(mine, roomId, chat.seq);
    said.set(mine, { member: chat.member, text: chat.text });
    if (Number.isFinite(chat.time)) mine.querySelector("time").replaceWith(timeElement(chat.time));
    return null;
  }
  const li = line("chat history", chat.text, { who: chat.member, time: chat.time, earlier: true });
  number(li, roomId, chat.seq);
  said.set(li, { member: chat.member, text: chat.text });
  if (next) log.insertBefore(li, next);
  else log.append(li);
  return li;
}

// An SCHistory: the room's last chats on entering it, or an older page asked for.
// Answers how many of its lines were not in the log yet.
function showHistory(msg, asked) {
  const chats = Array.isArray(msg.lines) ? msg.lines : [];
  const follow = atBottom();
  const added = chats.map((chat) => addHistory(msg.roomId, chat)).filter(Boolean);
  if (asked) {
    if (msg.roomId === backlog.roomId) backlog.more = msg.more === true;
    // The oldest of them at the top of the view, below the button.
    added[0]?.scrollIntoView({ block: "start" });
  } else {
    backlog = { roomId: msg.roomId, more: msg.more === true, loading: false };
    if (follow) scrollToBottom();
  }
  renderMe();
  return added.length;
}

// "이전 메시지 더 보기": the page of chats before the oldest of this room in the log.
async function loadOlder() {
  if (backlog.loading || me.room === null || me.roomId !== backlog.roomId) return;
  const oldest = log.querySelector(`li[data-room="${me.roomId}"][data-seq]`);
  const message = { type: "CSHistory", count: HISTORY_PAGE };
  if (oldest) message.before = Number(oldest.dataset.seq);
  backlog.loading = true;
  try {
    await request(message);
  } finally {
    backlog.loading = false;
  }
  if (older.hidden && (document.activeElement === older || document.activeElement === document.body)) input.focus();
}

// ---- the tab title ---------------------------------------------------------------

function countUnread() {
  if (!document.hidden) return;
  unread++;
  document.title = "(" + unread + ") " + TITLE;
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) return;
  unread = 0;
  document.title = TITLE;
  if (!pushed) poll(); // polls are skipped while hidden
});

// ---- who and where we are --------------------------------------------------------

function setState(kind, text) {
  const el = $("state");
  el.className = "state " + kind;
  el.textContent = text;
}

function renderMe() {
  $("me-name").textContent = me.name ?? "기본 이름";
  $("me-room").textContent = me.room === null ? "방 밖" : "[" + me.room + "]";
  const topic = me.room === null ? "" : me.topic;
  $("room-topic").hidden = topic === "";
  setText($("room-topic-text"), topic);
  $("room-topic").title = topic;
  $("leave").disabled = me.room === null;
  older.hidden = !(me.room !== null && backlog.more && backlog.roomId === me.roomId);
  const field = $("name-input");
  if (me.name !== null && document.activeElement !== field) field.value = me.name;
  markCurrentRoom();
  renderAccount();
}

function remembered(key) {
  try {
    return JSON.parse(localStorage.getItem(key) ?? "null");
  } catch {
    return null;
  }
}

function remember(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage may be off (private mode): the page works, it just forgets.
  }
}

// What the server's answers say about us. Others' notices never match these anchored
// patterns: they start with "[NAME]" or "OLD 의", and names hold no brackets.
function learn(text) {
  let m;
  if ((m = RENAMED.exec(text))) {
    me.name = m[1];
    // A name in parentheses is a default (IP, PORT), given back by /logout: not ours to keep.
    remember(STORE_NAME, m[1].startsWith("(") ? null : m[1]);
  } else if ((m = LOGGED_IN.exec(text)) || (m = REGISTERED.exec(text))) {
    // The name as registered; its SCSession, if any, comes next.
    me.account = m[1];
    suggestedAccount = m[1];
  } else if (text === LOGGED_OUT) {
    // The token the connection had is ended (§7.4): nothing to resume.
    me.account = null;
    remember(STORE_LOGIN, null);
  } else if (text === NOT_LOGGED_IN) {
    me.account = null;
  } else if ((m = ROOM_REGISTERED.exec(text))) {
    if (me.account !== null) setOwned(me.account, Number(m[1]), true);
  } else if ((m = ROOM_DELETED.exec(text)) || (m = ROOM_UNREGISTERED.exec(text))) {
    if (me.account !== null) setOwned(me.account, Number(m[1]), false);
  } else if ((m = ENTERED.exec(text))) {
    me.room = m[1];
    me.topic = ""; // a room with a topic tells it next (SCTopic, §7.6)
  } else if (LEFT.test(text) || KICKED.test(text)) {
    // Left, or kicked (§7.6): the server has us in no room; nothing to send.
    me.room = null;
    me.roomId = null;
    me.topic = "";
    remember(STORE_ROOM, null);
  } else if ((m = OWNER_CHANGED.exec(text))) {
    // The room we are in changed hands: it is ours now, or no longer (§7.6).
    if (me.account !== null && me.roomId !== null) setOwned(me.account, me.roomId, m[1] === me.account);
  } else {
    return;
  }
  renderMe();
}

// ---- the account (§7.2, §7.4) -----------------------------------------------------

// The kept login, if it is well formed: { name, token, expires }.
function storedLogin() {
  const login = remembered(STORE_LOGIN);
  if (login === null) return null;
  if (typeof login?.name !== "string" || typeof login.token !== "string" || login.token === "" || !Number.isFinite(login.expires)) {
    remember(STORE_LOGIN, null);
    return null;
  }
  return login;
}

// Rooms registered to each account from this browser: account -> Set of ids, kept
// in memory (the truth while the page lives) and in localStorage.
const owned = new Map(
  (Array.isArray(remembered(STORE_OWNED)) ? remembered(STORE_OWNED) : [])
    .filter((e) => typeof e?.account === "string" && Array.isArray(e.rooms))
    .map((e) => [e.account, new Set(e.rooms.filter(Number.isSafeInteger))]),
);

function ownRooms() {
  return (me.account !== null && owned.get(me.account)) || new Set();
}

function setOwned(account, id, yes) {
  if (!Number.isSafeInteger(id)) return;
  const rooms = owned.get(account) ?? new Set();
  if (yes === rooms.has(id)) return;
  if (yes) rooms.add(id);
  else rooms.delete(id);
  if (rooms.size > 0) owned.set(account, rooms);
  else owned.delete(account);
  remember(STORE_OWNED, [...owned].map(([a, r]) => ({ account: a, rooms: [...r] })));
  markOwnRooms();
}

function setAccountStatus(text) {
  setText($("account-status"), text);
}

// The date a kept login ends, as "M월 D일".
function day(ms) {
  const date = new Date(ms);
  return date.getMonth() + 1 + "월 " + date.getDate() + "일";
}

function renderAccount() {
  const on = granted.has("accounts");
  const account = on ? me.account : null;
  // Focus in the part about to be hidden (a form just sent) moves to the other part.
  const focusOut = $("account-out").contains(document.activeElement) && account !== null;
  const focusIn = $("account-in").contains(document.activeElement) && account === null;
  $("account").hidden = !on;
  $("me-account").hidden = account === null;
  setText($("me-account-name"), account ?? "");
  $("account-in").hidden = account === null;
  $("account-out").hidden = account !== null;
  if (on && focusOut) $("logout").focus();
  if (on && focusIn) $("login-name").focus();
  setText($("account-name"), account ?? "");
  const login = storedLogin();
  const kept = account !== null && login?.name === account;
  $("account-kept").hidden = !kept;
  if (kept) setText($("account-kept"), "이 브라우저에서 " + day(login.expires) + "까지 로그인이 유지됩니다.");
  const chosen = me.name !== null && !me.name.startsWith("(");
  setText($("register-name"), chosen ? me.name : "아직 없음 — 먼저 위에서 이름을 정하세요");
  // For password managers: the account the password fields belong to.
  document.querySelectorAll("#account input.username").forEach((el) => (el.value = account ?? me.name ?? ""));
  const field = $("login-name");
  if (account === null && field.value === "" && document.activeElement !== field) field.value = suggestedAccount || (chosen ? me.name : "");
  markOwnRooms();
}

// The stored login could not be used: the login form, with why, is where to go next.
function loginNeeded(name, why) {
  suggestedAccount = name;
  $("login-name").value = name;
  setAccountStatus(why);
  renderAccount();
  if (phone.matches) setPanel(true);
}

function accountsOn() {
  if (granted.has("accounts")) return true;
  show("local", ACCOUNTS_OFF);
  return false;
}

// What the server answered an account request, beside the panel too (the rename that
// may follow is in the header already).
function accountAnswer(answer) {
  if (!answer) return;
  if (answer.closed) {
    setAccountStatus("연결이 끊겨 요청이 처리되었는지 알 수 없습니다.");
    return;
  }
  setAccountStatus(answer.texts.filter((t) => !RENAMED.test(t)).join(" "));
}

// ---- the room list ---------------------------------------------------------------

function roomItem(id) {
  let item = roomItems.get(id);
  if (item) return item;
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  const title = document.createElement("span");
  title.className = "title";
  const here = document.createElement("span");
  here.className = "here";
  here.textContent = "현재 방";
  here.hidden = true;
  const mine = document.createElement("span");
  mine.className = "mine";
  mine.textContent = "내 방";
  mine.hidden = true;
  const topic = document.createElement("span");
  topic.className = "topic";
  topic.hidden = true;
  const members = document.createElement("span");
  members.className = "members";
  button.className = "room";
  button.append(title, here, mine, topic, members);
  button.addEventListener("click", () => switchRoom(id));
  // Rooms of one's account (§7.2): deleted with a second click on the same button.
  const del = document.createElement("button");
  del.type = "button";
  del.className = "delete";
  del.hidden = true;
  li.append(button, del);
  item = { li, button, title, topic, members, here, mine, del, armed: false, timer: null };
  disarm(item);
  del.addEventListener("click", () => {
    if (!item.armed) return arm(item);
    disarm(item);
    deleteRoom(id);
  });
  del.addEventListener("blur", () => disarm(item));
  roomItems.set(id, item);
  return item;
}

function arm(item) {
  item.armed = true;
  item.del.textContent = "정말 지우기";
  item.del.classList.add("confirm");
  item.del.setAttribute("aria-label", item.title.textContent + " 방을 정말 지우기 (한 번 더 누르면 지웁니다)");
  item.timer = setTimeout(() => disarm(item), CONFIRM_MS);
}

function disarm(item) {
  clearTimeout(item.timer);
  item.armed = false;
  item.del.textContent = "지우기";
  item.del.classList.remove("confirm");
  item.del.setAttribute("aria-label", item.title.textContent + " 방 지우기");
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

// Brings the list to `rooms` (one complete listing, in id order) in place: existing
// nodes are kept and only changed text is rewritten, so a focused or pressed button
// is never replaced under the user. Pushed and asked-for listings both come here.
function updateRoomList(rooms) {
  const seen = new Set();
  let previous = null;
  for (const room of rooms) {
    seen.add(room.roomId);
    const item = roomItem(room.roomId);
    if (item.title.textContent !== "[" + room.roomId + "] " + room.title) {
      item.title.textContent = "[" + room.roomId + "] " + room.title;
      if (!item.armed) disarm(item); // its label names the room
    }
    // Its topic (§7.6): only in the listings of a client that opted in, and only set.
    const topic = typeof room.topic === "string" ? room.topic : "";
    setText(item.topic, topic === "" ? "" : "주제: " + topic);
    item.topic.hidden = topic === "";
    // A registered room (§7.2) stays while nobody is in it.
    setText(item.members, room.members.length === 0 ? "(비어 있음)" : room.members.length + "명: " + room.members.join(", "));
    const wanted = previous ? previous.nextSibling : roomList.firstChild;
    if (item.li !== wanted) roomList.insertBefore(item.li, wanted);
    previous = item.li;
  }
  for (const [id, item] of roomItems) {
    if (!seen.has(id)) {
      const focused = item.li.contains(document.activeElement);
      item.li.remove();
      roomItems.delete(id);
      if (focused) input.focus(); // its delete button, most likely: not left on nothing
    }
  }
  $("no-rooms").hidden = rooms.length > 0;
  // A room of ours below the listing's last id that it lacks is gone (deleted
  // elsewhere, or a server whose store was wiped). Ids above it may come in the rest
  // of a listing split over several messages (§6.5), or be newer than a pushed
  // snapshot (§7.1): those stay.
  const last = rooms.at(-1)?.roomId;
  if (me.account !== null && last !== undefined) {
    for (const id of ownRooms()) if (id < last && !seen.has(id)) setOwned(me.account, id, false);
  }
  markCurrentRoom();
  markOwnRooms();
  // Observable by tests (and anything else) waiting for the next update.
  roomList.dataset.updates = String(++listUpdates);
}

function markOwnRooms() {
  const mine = ownRooms();
  for (const [id, item] of roomItems) {
    const own = mine.has(id);
    if (!own && document.activeElement === item.del) item.button.focus(); // not left on nothing
    item.mine.hidden = !own;
    item.del.hidden = !own;
    if (!own && item.armed) disarm(item);
  }
}

function markCurrentRoom() {
  for (const [id, item] of roomItems) {
    const current = id === me.roomId && me.room !== null;
    if (current) item.button.setAttribute("aria-current", "true");
    else item.button.removeAttribute("aria-current");
    item.here.hidden = !current;
  }
}

// The newest listing. One that does not fit a message comes as several SCRoomsResult
// in a row, each as full as it can be, in id order (§6.5), whether pushed (§7.1) or
// asked for: a message continues the listing before it when it goes on past its last
// room and its first room would not have fitted into the previous message.
let listing = null; // { rooms, data: the JSON text of its last message }
const utf8 = new TextEncoder();

function roomSize(room) {
  const members = room.members.map((m) => JSON.stringify(m)).join(", ");
  const topic = typeof room.topic === "string" ? `, "topic": ${JSON.stringify(room.topic)}` : "";
  const json = `{"roomId": ${room.roomId}, "title": ${JSON.stringify(room.title)}, "members": [${members}]${topic}}`;
  return utf8.encode(json).length;
}

function takeListing(msg, data) {
  const rooms = Array.isArray(msg.rooms) ? msg.rooms : [];
  const last = listing?.rooms.at(-1);
  const continues =
    rooms.length > 0 &&
    last !== undefined &&
    rooms[0].roomId > last.roomId &&
    utf8.encode(listing.data).length + ", ".length + roomSize(rooms[0]) > FRAME_MAX;
  listing = { rooms: continues ? listing.rooms.concat(rooms) : rooms, data };
  updateRoomList(listing.rooms);
  return listing.rooms;
}

// ---- requests and their answers --------------------------------------------------

// Requests sent on the current socket whose answers are not complete yet, oldest first.
let pending = [];

function send(message) {
  if (!socket || socket.readyState !== WebSocket.OPEN) {
    show("local", "서버에 연결되어 있지 않습니다.");
    return false;
  }
  socket.send(JSON.stringify(message));
  return true;
}

// Sends `message`, then a barrier, and resolves with what the server said to us in
// between: { texts, rooms, roomId } — its system messages, the newest room listing, and
// the room we were in once it was handled (a number; null: none; undefined: unknown)
// — or { closed: true } if the connection went first; null if it could not be sent.
//
// Why a barrier: the server never echoes a chat to its sender, and an accepted chat
// gets no answer at all (PROTOCOL.md §4.3); only a refusal is answered. One client's
// requests are handled in order and its replies leave in that order (§6.8, in a
// cluster too, §6.9), so once the answer to a request sent after the chat arrives,
// any refusal of the chat has arrived before it: no refusal in between means the chat
// was accepted. The same barrier tells which answer a join or leave got, and where a
// /rooms answer ends.
//
// The barrier is `CSHistory {count: 1, before: 1}`: it changes nothing, costs one
// command of flood control (5/s after 20, §6.4a: far above what a person types), and
// is answered to the asker alone, with exactly one of: an empty SCHistory (in a room;
// its roomId says which), NOT_IN_ROOM (in none), HISTORY_OFF (no "history" in force).
// Not CSHello: a hello with "rooms" makes the list current at that moment the one the
// server compares its pushes with (§7.1), so a hello after every request would swallow
// a change made just before it; the page says hello once per connection. A room list
// is never an end: it may be pushed at any time (§7.1). What the request itself can
// answer that looks like the barrier's answer is known from its type (`ownAnswer`).
const BARRIER = JSON.stringify({ type: "CSHistory", count: 1, before: 1 });

function request(message) {
  if (!send(message)) return Promise.resolve(null);
  if (message.type !== "CSHello") socket.send(BARRIER); // SCHello is only ever an answer
  return new Promise((resolve) =>
    pending.push({ type: message.type, message, texts: [], rooms: null, notIn: 0, left: false, entered: false, answered: false, resolve }),
  );
}

// Whether `msg`, which looks like the barrier's answer, is the request's own answer.
function ownAnswer(p, msg) {
  const notIn = msg.type === "SCSystemMessage" && msg.text === NOT_IN_ROOM;
  switch (p.type) {
    case "CSChat": // a chat out of a room: NOT_IN_ROOM, then the barrier's
    case "CSOp": // moderation out of a room (§7.6): the same
    case "CSOwner":
    case "CSKick":
    case "CSBan":
    case "CSTopic":
      return notIn && p.notIn === 0;
    case "CSLeaveRoom": // the same out of a room; in one, the leave notice comes first
      return notIn && p.notIn === 0 && !p.left;
    case "CSJoinRoom": // entered: the room's last chats follow the entry notice (§7.3)
      return msg.type === "SCHistory" && p.entered && !p.answered;
    case "CSHistory": // exactly one answer: a page or a refusal
      return !p.answered;
    default:
      return false;
  }
}

function isBarrierLike(msg) {
  return msg.type === "SCHistory" || (msg.type === "SCSystemMessage" && (msg.text === NOT_IN_ROOM || msg.text === HISTORY_OFF));
}

function finish(p, extra) {
  pending.shift();
  p.resolve(Object.assign(p, extra));
}

function onMessage(event) {
  let msg;
  try {
    msg = JSON.parse(event.data);
  } catch {
    show("local", "알 수 없는 메시지를 받았습니다: " + event.data);
    return;
  }
  const waiting = pending[0];
  if (waiting && waiting.type !== "CSHello" && isBarrierLike(msg) && !ownAnswer(waiting, msg)) {
    finish(waiting, { roomId: msg.type === "SCHistory" ? msg.roomId : msg.text === NOT_IN_ROOM ? null : undefined });
    return;
  }
  switch (msg.type) {
    case "SCSystemMessage":
      if (waiting) {
        waiting.texts.push(msg.text);
        if (msg.text === NOT_IN_ROOM) waiting.notIn++;
        if (LEFT.test(msg.text)) waiting.left = true;
        if (waiting.type === "CSHistory" && HISTORY_REFUSALS.has(msg.text)) waiting.answered = true;
        if (ENTERED.test(msg.text) && waiting.type === "CSJoinRoom") {
          waiting.entered = true;
          me.roomId = waiting.message.roomId; // chats may come before the join's end
        }
      }
      show("system", msg.text, { time: msg.time });
      learn(msg.text);
      break;
    case "SCChat": {
      const li = show("chat", msg.text, { who: msg.member, time: msg.time });
      number(li, me.roomId, msg.seq);
      said.set(li, { member: msg.member, text: msg.text });
      countUnread();
      break;
    }
    case "SCHistory": {
      // Only ever the answer to a join or a CSHistory of ours (the rest ended above).
      const added = showHistory(msg, waiting?.type === "CSHistory");
      if (waiting) Object.assign(waiting, { answered: true, history: msg, added });
      break;
    }
    case "SCDirect":
      // To us (counted as unread), or our own copy of one the server delivered.
      if (typeof msg.member !== "string" || typeof msg.text !== "string") break;
      append(directLine(msg));
      if (msg.outgoing !== true) countUnread();
      break;
    case "SCTopic":
      showTopic(msg);
      break;
    case "SCSession":
      // A login to keep (§7.4): after a login or registration (its answer came just
      // before) or a password change (it replaces the one kept). Never shown.
      if (typeof msg.token === "string" && msg.token !== "" && Number.isFinite(msg.expires) && me.account !== null) {
        remember(STORE_LOGIN, { name: me.account, token: msg.token, expires: msg.expires });
      }
      renderAccount();
      break;
    case "SCRoomsResult": {
      const rooms = takeListing(msg, event.data);
      if (waiting) waiting.rooms = rooms;
      break;
    }
    case "SCHello":
      if (waiting?.type === "CSHello") finish(waiting, { features: Array.isArray(msg.features) ? msg.features : [] });
      break;
    default:
      // A type of an extension this page did not ask for: nothing to show.
      break;
  }
}

// ---- commands --------------------------------------------------------------------

function ownLabel() {
  return (me.name ?? "나") + " (나)";
}

async function chat(text) {
  const answer = await request({ type: "CSChat", text });
  if (!answer) return;
  if (answer.closed) {
    show("local", "연결이 끊겨 이 메시지가 전달되었는지 알 수 없습니다: " + text);
    return;
  }
  if (answer.texts.some(isChatRefusal)) return; // the refusal itself is already in the log
  // Shown as the others got it: runs of more than three whitespace characters become
  // one space on the server (§6.4); the input cannot hold control characters.
  const sent = text.replace(/\s{4,}/gu, " ");
  const li = show("chat mine", sent, { who: ownLabel() });
  // Unnumbered: the room's history, when it comes again, gives it its number.
  if (Number.isSafeInteger(answer.roomId)) li.dataset.room = String(answer.roomId);
  said.set(li, { own: true, name: me.name, text: sent });
}

// /msg NAME TEXT: the server answers with its copy (shown as it comes, §7.5) or a
// refusal (a system message, in the log already).
async function direct(name, text) {
  if (!granted.has("direct")) return show("local", DIRECT_OFF);
  const answer = await request({ type: "CSDirect", name, text });
  if (answer?.closed) show("local", "연결이 끊겨 이 귓속말이 전달되었는지 알 수 없습니다: " + text);
}

// /ignore NAME (ignore true), /unignore NAME (false): the server's answer says how it went.
async function ignore(name, on) {
  if (!granted.has("direct")) return show("local", DIRECT_OFF);
  await request({ type: "CSIgnore", name, ignore: on });
}

// A moderation request (§7.6): the server answers with a system message (in the log
// already), what was done or why not.
async function moderate(message) {
  if (!granted.has("moderation")) return show("local", MODERATION_OFF);
  const answer = await request(message);
  if (answer?.closed) show("local", "연결이 끊겨 요청이 처리되었는지 알 수 없습니다.");
}

// An SCTopic (§7.6): the topic of the room we are in, told on entry (`by` empty) or
// changed by `by` ("" topic: cleared). The header shows it; the log says so, but for
// one's own change (the server's answer says it).
function showTopic(msg) {
  if (!Number.isSafeInteger(msg.roomId) || typeof msg.topic !== "string") return;
  if (me.room === null || (me.roomId !== null && msg.roomId !== me.roomId)) return;
  const by = typeof msg.by === "string" ? msg.by : "";
  me.topic = msg.topic;
  renderMe();
  let text;
  if (by === "") text = msg.topic === "" ? null : "주제: " + msg.topic;
  else if (by === me.name) text = null;
  else text = msg.topic === "" ? by + " 님이 주제를 지웠습니다." : by + " 님이 주제를 바꿨습니다: " + msg.topic;
  if (text !== null) show("topic", text);
}

async function setName(name) {
  const answer = await request({ type: "CSName", name });
  // A registered name: the login form is the way to it.
  if (answer?.texts?.includes(NAME_REGISTERED) && me.account === null) {
    suggestedAccount = name;
    $("login-name").value = name;
    renderAccount();
  }
  return Boolean(answer?.texts?.some((t) => RENAMED.test(t)));
}

// Takes `name` again after a (re)connect. After a reload our previous connection may
// still hold it for a moment: then a few tries, further apart. Answers whether it
// did, or null if the connection went.
async function takeName(name) {
  for (let attempt = 1; ; attempt++) {
    const answer = await request({ type: "CSName", name });
    if (!answer || answer.closed) return null;
    if (answer.texts.some((t) => RENAMED.test(t))) return true;
    if (answer.texts.includes(NAME_TAKEN) && attempt < 5) {
      await new Promise((r) => setTimeout(r, 400 * attempt));
      continue;
    }
    show("local", "저장된 이름 " + name + " 을(를) 다시 쓰지 못해 기본 이름으로 접속했습니다.");
    return false;
  }
}

// ---- account requests (§7.2): each answered to us alone, the answer shown in the
// log and beside the panel.

async function login(name, password) {
  if (!accountsOn()) return;
  accountAnswer(await request({ type: "CSLogin", name, password }));
}

async function register(password) {
  if (!accountsOn()) return;
  accountAnswer(await request({ type: "CSRegister", password }));
}

async function logout() {
  if (!accountsOn()) return;
  const answer = await request({ type: "CSLogout" });
  // Logged out, or not logged in at all: either way no login is kept for later.
  if (answer?.texts?.includes(LOGGED_OUT) || answer?.texts?.includes(NOT_LOGGED_IN)) {
    remember(STORE_LOGIN, null);
    renderAccount();
  }
  accountAnswer(answer);
}

async function changePassword(old, password) {
  if (!accountsOn()) return null;
  const answer = await request({ type: "CSPassword", old, new: password });
  accountAnswer(answer);
  return answer;
}

async function deleteRoom(id) {
  if (!accountsOn()) return;
  const account = me.account;
  const answer = await request({ type: "CSDeleteRoom", roomId: id });
  // Not (or no longer) ours after all: no badge, no button.
  if (account !== null && answer?.texts?.some((t) => t === NOT_ROOM_OWNER || t === NO_SUCH_ROOM)) setOwned(account, id, false);
  accountAnswer(answer);
  if (!pushed) refreshRooms();
}

// /history [N]: the room's last N chats (the server's default 50 without N); those
// not in the log yet are put in their places.
async function history(count) {
  const message = { type: "CSHistory" };
  if (count !== undefined) message.count = count;
  const answer = await request(message);
  if (!answer?.history) return; // a refusal: in the log already
  const got = Array.isArray(answer.history.lines) ? answer.history.lines.length : 0;
  show("local", "대화 기록 " + got + "줄을 받았습니다. 새로 보인 줄: " + answer.added + "줄.");
}

async function refreshRooms() {
  const answer = await request({ type: "CSRooms" });
  return answer?.rooms ?? null;
}

async function poll() {
  if (pollInFlight || document.hidden || !socket || socket.readyState !== WebSocket.OPEN) return;
  pollInFlight = true;
  try {
    await refreshRooms();
  } finally {
    pollInFlight = false;
  }
}

async function joinRoom(id) {
  const answer = await request({ type: "CSJoinRoom", roomId: id });
  const entered = answer?.texts?.map((t) => ENTERED.exec(t)).find(Boolean);
  if (!entered) return false;
  me.roomId = id;
  remember(STORE_ROOM, { id, title: entered[1] });
  renderMe();
  if (!pushed) refreshRooms();
  return true;
}

async function createRoom(title) {
  const answer = await request({ type: "CSCreateRoom", title });
  const entered = answer?.texts?.map((t) => ENTERED.exec(t)).find(Boolean);
  if (!entered) return false;
  // The answer names the room but not its id; the barrier's answer does (a new room
  // has no history: nothing to show).
  backlog = { roomId: answer.roomId ?? null, more: false, loading: false };
  if (Number.isSafeInteger(answer.roomId)) {
    me.roomId = answer.roomId;
    remember(STORE_ROOM, { id: me.roomId, title: entered[1] });
    renderMe();
    if (!pushed) refreshRooms();
    return true;
  }
  // Without "history" in force: the listing asked right after it (answered in order)
  // has it: the newest room of that title that we are in.
  const rooms = (await refreshRooms()) ?? [];
  const ours = rooms.filter((r) => r.title === entered[1] && (me.name === null || r.members.includes(me.name)));
  if (ours.length > 0 && me.room !== null) {
    me.roomId = Math.max(...ours.map((r) => r.roomId));
    remember(STORE_ROOM, { id: me.roomId, title: entered[1] });
    renderMe();
  }
  return true;
}

async function leaveRoom() {
  const answer = await request({ type: "CSLeaveRoom" });
  const out = Boolean(answer?.texts?.some((t) => LEFT.test(t) || t === NOT_IN_ROOM));
  if (out) {
    me.room = null;
    me.roomId = null;
    remember(STORE_ROOM, null);
    renderMe();
    if (!pushed) refreshRooms();
  }
  return out;
}

let switching = false;

// A click in the room list: leave the current room (if any) and join that one, each
// step waiting for its answer.
async function switchRoom(id) {
  if (switching) return;
  if (me.roomId === id && me.room !== null) return;
  switching = true;
  try {
    await restoring;
    if (me.room !== null && !(await leaveRoom())) return;
    if ((await joinRoom(id)) && phone.matches) setPanel(false);
  } finally {
    switching = false;
  }
}

// After a (re)connect: the hello, the room list as it is now (from then on pushed,
// §7.1), the kept login (§7.4), the remembered name, then the remembered room, each
// confirmed by the server before the header shows it.
async function restore() {
  const hello = request({ type: "CSHello", features: FEATURES });
  const rooms = refreshRooms();
  const agreed = await hello;
  if (!agreed || agreed.closed) return;
  granted = new Set(agreed.features);
  pushed = granted.has("rooms");
  if (!pushed) pollTimer = setInterval(poll, POLL_MS);
  renderAccount();
  await rooms;
  // Read before the login: its rename rewrites the remembered name.
  const name = remembered(STORE_NAME);
  const login = await resumeLogin();
  if (login.closed) return;
  if (typeof name === "string" && name !== "" && name !== me.name) {
    if (login.refused && name === login.account) {
      // The account's name, which only a login gives back (the form is shown).
      remember(STORE_NAME, null);
    } else if ((await takeName(name)) === null) {
      return; // the connection went
    }
  }
  const room = remembered(STORE_ROOM);
  if (room && Number.isInteger(room.id)) {
    if (!(await joinRoom(room.id))) {
      remember(STORE_ROOM, null);
      show("local", "전에 있던 방 [" + room.id + "] " + room.title + " 에 다시 들어가지 못해 방 밖에 있습니다.");
    }
  }
  if (!pushed) await refreshRooms();
}

// Logs in again with the kept token, first thing after the hello: answers
// { account } logged in, { account, refused } with the login form shown, or
// { closed }; {} with nothing to resume (no kept login, or a server without
// accounts, where the page is a guest).
async function resumeLogin() {
  const login = storedLogin();
  if (login === null) return {};
  if (login.expires <= Date.now()) {
    remember(STORE_LOGIN, null);
    if (!granted.has("accounts")) return {};
    const why = "저장된 로그인이 만료되었습니다. 비밀번호로 다시 로그인하세요.";
    show("local", why);
    loginNeeded(login.name, why);
    return { account: login.name, refused: true };
  }
  if (!granted.has("resume")) return {};
  const answer = await request({ type: "CSResume", name: login.name, token: login.token });
  if (!answer || answer.closed) return { closed: true };
  if (answer.texts.includes(RESUME_FAILED)) {
    remember(STORE_LOGIN, null);
    loginNeeded(login.name, RESUME_FAILED);
    return { account: login.name, refused: true };
  }
  if (me.account === null) {
    // Not now (too many attempts, a store that cannot answer): the token is kept for
    // the next connection.
    loginNeeded(login.name, answer.texts.join(" "));
    return { account: login.name, refused: true };
  }
  setAccountStatus(""); // the panel says who we are
  // Logged in, but our previous connection (a reload) may still hold the name.
  if (me.name !== me.account && answer.texts.includes(NAME_TAKEN)) await takeName(me.account);
  return { account: me.account };
}

function holdsPassword(command) {
  return command === "/register" || command === "/login" || command === "/password";
}

// A line that holds a password, as it may be shown: "/login NAME ********".
function masked(command, args) {
  const keep = command === "/login" ? 1 : 0; // /login keeps its NAME
  return [command, ...args.map((a, i) => (i < keep ? a : MASK))].join(" ");
}

// A line as the reference client reads it (docs/PROTOCOL.md §5.2), plus chat-client's
// account and history commands (crates/client/src/commands.rs): a password is one
// word, and a line that holds one is shown only masked.
async function submitLine(raw) {
  const line = raw.trim();
  if (line === "") return;
  const [command, ...args] = line.split(/\s+/);
  if (holdsPassword(command)) show("local", masked(command, args));
  await restoring; // in order after the restored name and room
  if (!line.startsWith("/")) return chat(line);
  const usage = (form) => show("local", "사용법: " + form);
  switch (command) {
    case "/help":
      HELP.forEach((h) => show("local", h));
      if (granted.has("accounts")) ACCOUNT_HELP.forEach((h) => show("local", h));
      else show("local", "이 서버에서는 계정 명령어(/register, /login, /logout, /password, /delete)를 쓸 수 없습니다.");
      if (granted.has("direct")) DIRECT_HELP.forEach((h) => show("local", h));
      else show("local", "이 서버에서는 귓속말 명령어(/msg, /ignore, /unignore)를 쓸 수 없습니다.");
      if (granted.has("moderation")) MODERATION_HELP.forEach((h) => show("local", h));
      else show("local", "이 서버에서는 방 관리 명령어(/op, /deop, /owner, /kick, /ban, /unban, /topic)를 쓸 수 없습니다.");
      break;
    case "/msg": {
      const { name, text } = splitName(line.slice(command.length).trimStart());
      if (name !== "" && text !== "") await direct(name, text);
      else usage("/msg 이름 내용");
      break;
    }
    case "/ignore":
    case "/unignore": {
      // The rest of the line is the name (it may hold spaces), quoted or not.
      const name = restName(line.slice(command.length).trim());
      if (name !== "") await ignore(name, command === "/ignore");
      else usage(command + " 이름");
      break;
    }
    case "/op":
    case "/deop":
    case "/owner":
    case "/unban": {
      // Moderation (§7.6): the rest of the line is the name, quoted or not.
      const name = restName(line.slice(command.length).trim());
      if (name === "") usage(command + " 이름");
      else if (command === "/owner") await moderate({ type: "CSOwner", name });
      else if (command === "/unban") await moderate({ type: "CSBan", name, ban: false });
      else await moderate({ type: "CSOp", name, op: command === "/op" });
      break;
    }
    case "/kick": {
      // A first word or a quoted name, then the reason, if any.
      const { name, text } = splitName(line.slice(command.length).trimStart());
      const reason = text.trim();
      if (name === "") usage("/kick 이름 [이유]");
      else await moderate(reason === "" ? { type: "CSKick", name } : { type: "CSKick", name, reason });
      break;
    }
    case "/ban": {
      // A first word or a quoted name, then a whole number of minutes, if any (the
      // server checks its range).
      const { name, text } = splitName(line.slice(command.length).trimStart());
      const minutes = text.trim();
      const whole = /^[+-]?\d+$/u.test(minutes) && Number.isSafeInteger(Number(minutes));
      if (name === "" || (minutes !== "" && !whole)) usage("/ban 이름 [분]");
      else if (minutes === "") await moderate({ type: "CSBan", name, ban: true });
      else await moderate({ type: "CSBan", name, minutes: Number(minutes), ban: true });
      break;
    }
    case "/topic":
      // The rest of the line; none clears the topic.
      await moderate({ type: "CSTopic", text: line.slice(command.length).trim() });
      break;
    case "/register":
      if (args.length === 1) await register(args[0]);
      else usage("/register 비밀번호");
      break;
    case "/login":
      if (args.length === 2) await login(args[0], args[1]);
      else usage("/login 이름 비밀번호");
      break;
    case "/logout":
      if (args.length === 0) await logout();
      else usage("/logout");
      break;
    case "/password":
      if (args.length === 2) await changePassword(args[0], args[1]);
      else usage("/password 지금비밀번호 새비밀번호");
      break;
    case "/delete": {
      const id = /^\+?\d+$/.test(args[0] ?? "") ? Number(args[0]) : NaN;
      if (args.length === 1 && Number.isSafeInteger(id) && id > 0) await deleteRoom(id);
      else usage("/delete 번호");
      break;
    }
    case "/history":
      if (args.length === 0) await history();
      else if (args.length === 1 && args[0] === "more") {
        if (me.room !== null && backlog.more && backlog.roomId === me.roomId) await loadOlder();
        else show("local", me.room === null ? NOT_IN_ROOM : "더 가져올 이전 대화가 없습니다.");
      } else if (args.length === 1 && /^[+-]?\d+$/.test(args[0]) && Number.isSafeInteger(Number(args[0]))) await history(Number(args[0]));
      else usage("/history [줄 수] | /history more");
      break;
    case "/name":
      await setName(args.join(" "));
      break;
    case "/rooms": {
      const rooms = await refreshRooms();
      if (rooms === null) break;
      if (rooms.length === 0) show("system", "개설된 방이 없습니다.");
      for (const r of rooms) show("system", "[" + r.roomId + "] " + r.title + " (" + (r.members.length ? r.members.join(", ") : "비어 있음") + ")");
      break;
    }
    case "/create":
      if (args.length === 0) show("local", "방 제목을 지정해야 됩니다.");
      else await createRoom(args.join(" "));
      break;
    case "/join": {
      const id = Number.parseInt(args[0] ?? "", 10);
      if (!args[0] || id === 0) show("local", "방 번호를 입력해야 됩니다.");
      else if (Number.isNaN(id)) show("local", "방 번호는 숫자여야 합니다.");
      else await joinRoom(id);
      break;
    }
    case "/leave":
      await leaveRoom();
      break;
    case "/shutdown":
      await request({ type: "CSShutdown" });
      break;
    default:
      show("local", "알 수 없는 명령어입니다: " + command + " (/help 로 명령어를 볼 수 있습니다)");
  }
}

// ---- the connection --------------------------------------------------------------

function connect() {
  setState("connecting", "연결 중…");
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  const ws = new WebSocket(url);
  socket = ws;
  let opened = false;
  ws.addEventListener("open", () => {
    opened = true;
    backoff = 500;
    me = { name: null, room: null, roomId: null, account: null, topic: "" };
    renderMe();
    show("local", location.host + " 에 연결되었습니다.");
    restoring = restore().then(() => {
      if (socket === ws && ws.readyState === WebSocket.OPEN) setState("open", "연결됨");
    });
  });
  ws.addEventListener("message", onMessage);
  ws.addEventListener("close", () => {
    clearInterval(pollTimer);
    pollInFlight = false;
    pushed = false;
    const unanswered = pending;
    pending = [];
    unanswered.forEach((p) => p.resolve({ closed: true, texts: p.texts, rooms: null }));
    const wait = backoff;
    backoff = Math.min(backoff * 2, 10000);
    setState("closed", "연결 끊김 — " + Math.round(wait / 1000) + "초 뒤 다시 연결");
    if (opened) show("local", "서버와의 연결이 끊겼습니다. 다시 연결합니다…");
    // The remembered room stays remembered: the next connection goes back to it, and
    // the kept login logs in again.
    me.room = null;
    me.roomId = null;
    me.account = null;
    me.topic = "";
    backlog = { roomId: null, more: false, loading: false };
    renderMe();
    setTimeout(connect, wait);
  });
}

// ---- the phone layout: the room panel folds away ---------------------------------

const phone = matchMedia("(max-width: 600px)");

function setPanel(open) {
  document.body.classList.toggle("panel-closed", !open);
  $("rooms-toggle").setAttribute("aria-expanded", String(open));
}

phone.addEventListener("change", () => setPanel(!phone.matches));
$("rooms-toggle").addEventListener("click", () => {
  setPanel(document.body.classList.contains("panel-closed"));
});

// ---- wiring ----------------------------------------------------------------------

$("input-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const line = input.value;
  input.value = "";
  submitLine(line);
});
// Enter while an IME composition is open (Korean, Japanese, …) commits the syllable;
// it must not send half of it.
input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.isComposing || e.keyCode === 229)) e.preventDefault();
});
$("name-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = $("name-input").value.trim();
  if (name === "") return show("local", "이름을 입력해 주세요.");
  await restoring;
  await setName(name);
});
$("create-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const title = $("create-title").value.trim();
  if (title === "") return show("local", "방 제목을 지정해야 됩니다.");
  $("create-title").value = "";
  await restoring;
  if (me.room !== null && !(await leaveRoom())) return;
  await createRoom(title);
});
$("leave").addEventListener("click", leaveRoom);
// The account forms: each password field is emptied as its value is sent.
function takePassword(id) {
  const field = $(id);
  const value = field.value;
  field.value = "";
  return value;
}
$("login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = $("login-name").value.trim();
  const password = takePassword("login-password");
  if (name === "") return setAccountStatus("계정 이름을 입력해 주세요.");
  if (password === "") return setAccountStatus("비밀번호를 입력해 주세요.");
  await restoring;
  await login(name, password);
});
$("register-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const password = takePassword("register-password");
  if (password === "") return setAccountStatus("비밀번호를 입력해 주세요.");
  await restoring;
  await register(password);
});
$("password-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const old = takePassword("password-old");
  const password = takePassword("password-new");
  if (old === "" || password === "") return setAccountStatus("지금 비밀번호와 새 비밀번호를 모두 입력해 주세요.");
  await restoring;
  const answer = await changePassword(old, password);
  if (answer?.texts?.includes(PASSWORD_CHANGED)) $("password-details").open = false;
});
$("logout").addEventListener("click", async () => {
  await restoring;
  await logout();
});
$("refresh").addEventListener("click", refreshRooms);
older.addEventListener("click", loadOlder);
chip.addEventListener("click", () => {
  scrollToBottom();
  input.focus();
});
logWrap.addEventListener("scroll", () => {
  if (atBottom()) chip.hidden = true;
});

setPanel(!phone.matches);
renderMe();
connect();
input.focus();
