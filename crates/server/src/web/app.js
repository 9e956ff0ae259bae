// The web client: the reference client's commands in a page, over the server's own
// WebSocket (/ws). One JSON message of the TCP JSON format per text message.
// Everything shown is set with textContent: nothing from the server or a peer is
// ever parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const log = $("log");
const input = $("input");
let socket = null;
let backoff = 500;
let me = { name: null, room: null };
let roomsTimer = null;

const HELP = [
  "/help: 사용 가능 명령어를 나열한다.",
  "/name: 채팅 이름을 지정한다.",
  "/rooms: 채팅 방 목록을 출력한다.",
  "/create: 채팅 방을 만든다.",
  "/join: 채팅 방에 들어간다.",
  "/leave: 채팅 방을 나간다.",
  "/shutdown: 채팅 서버를 종료한다.",
];

function show(kind, text, who) {
  const atBottom = log.parentElement.scrollTop + log.parentElement.clientHeight >= log.parentElement.scrollHeight - 4;
  const li = document.createElement("li");
  li.className = kind;
  if (who !== undefined) {
    const name = document.createElement("span");
    name.className = "who";
    name.textContent = who;
    li.append(name, document.createTextNode(": " + text));
  } else {
    li.textContent = text;
  }
  log.append(li);
  while (log.children.length > 2000) log.firstElementChild.remove();
  if (atBottom) li.scrollIntoView({ block: "end" });
}

function setState(kind, text) {
  const el = $("state");
  el.className = "state " + kind;
  el.textContent = text;
}

function renderMe() {
  $("me-name").textContent = me.name ?? "(기본 이름)";
  $("me-room").textContent = me.room === null ? "방 밖" : "[" + me.room + "]";
  $("leave").disabled = me.room === null;
}

// What the server's notices say about us (the texts of docs/PROTOCOL.md §4.3).
function learn(text) {
  let m;
  if ((m = /^이름이 (.*) 으로 변경되었습니다\.$/.exec(text))) me.name = m[1];
  else if ((m = /^방제\[(.*)\] 방에 입장했습니다\.$/.exec(text))) me.room = m[1];
  else if (/^방제\[.*\] 대화 방에서 퇴장했습니다\.$/.test(text)) me.room = null;
  else return;
  renderMe();
}

function renderRooms(rooms) {
  const list = $("rooms");
  list.replaceChildren();
  for (const room of rooms) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "[" + room.roomId + "] " + room.title;
    const members = document.createElement("span");
    members.className = "members";
    members.textContent = room.members.join(", ");
    button.append(members);
    button.addEventListener("click", () => send({ type: "CSJoinRoom", roomId: room.roomId }));
    li.append(button);
    list.append(li);
  }
  if (rooms.length === 0) {
    const li = document.createElement("li");
    li.className = "local";
    li.textContent = "방이 없습니다.";
    list.append(li);
  }
}

let quietRooms = 0; // /rooms replies asked for by the refresh timer, not shown in the log

function onMessage(event) {
  let msg;
  try { msg = JSON.parse(event.data); } catch { return show("local", "알 수 없는 메시지: " + event.data); }
  if (msg.type === "SCSystemMessage") {
    show("system", msg.text);
    learn(msg.text);
  } else if (msg.type === "SCChat") {
    show("chat", msg.text, msg.member);
  } else if (msg.type === "SCRoomsResult") {
    renderRooms(msg.rooms);
    if (quietRooms > 0) { quietRooms--; return; }
    if (msg.rooms.length === 0) show("system", "개설된 방이 없습니다.");
    for (const r of msg.rooms) show("system", "[" + r.roomId + "] " + r.title + " (" + r.members.join(", ") + ")");
  }
}

function send(message) {
  if (!socket || socket.readyState !== WebSocket.OPEN) {
    show("local", "서버에 연결되어 있지 않습니다.");
    return false;
  }
  socket.send(JSON.stringify(message));
  return true;
}

// A line as the reference client reads it (docs/PROTOCOL.md §5.2).
function submitLine(raw) {
  const line = raw.trim();
  if (line === "") return;
  if (!line.startsWith("/")) {
    if (send({ type: "CSChat", text: line })) show("chat mine", line, (me.name ?? "나") + " (나)");
    return;
  }
  const [command, ...args] = line.split(/\s+/);
  switch (command) {
    case "/help": HELP.forEach((h) => show("local", h)); break;
    case "/name": send({ type: "CSName", name: args.join(" ") }); break;
    case "/rooms": send({ type: "CSRooms" }); break;
    case "/create":
      if (args.length === 0) show("local", "방 제목을 지정해야 됩니다.");
      else send({ type: "CSCreateRoom", title: args.join(" ") });
      break;
    case "/join": {
      const id = Number.parseInt(args[0] ?? "", 10);
      if (!args[0] || id === 0) show("local", "방 번호를 입력해야 됩니다.");
      else if (Number.isNaN(id)) show("local", "방 번호는 숫자여야 합니다.");
      else send({ type: "CSJoinRoom", roomId: id });
      break;
    }
    case "/leave": send({ type: "CSLeaveRoom" }); break;
    case "/shutdown": send({ type: "CSShutdown" }); break;
    default: show("local", "Invalid command: " + command);
  }
}

function refreshRooms() {
  if (socket && socket.readyState === WebSocket.OPEN && !document.hidden) {
    quietRooms++;
    send({ type: "CSRooms" });
  }
}

function connect() {
  setState("connecting", "연결 중…");
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  socket = new WebSocket(url);
  socket.addEventListener("open", () => {
    backoff = 500;
    me = { name: null, room: null };
    renderMe();
    setState("open", "연결됨");
    show("local", "Connected to " + location.host);
    refreshRooms();
    roomsTimer = setInterval(refreshRooms, 3000);
  });
  socket.addEventListener("message", onMessage);
  socket.addEventListener("close", () => {
    clearInterval(roomsTimer);
    const wait = backoff;
    backoff = Math.min(backoff * 2, 10000);
    setState("closed", "연결 끊김 — " + Math.round(wait / 1000) + "초 뒤 다시 연결");
    show("local", "서버와의 연결이 끊겼습니다. 다시 연결합니다…");
    me.room = null;
    renderMe();
    setTimeout(connect, wait);
  });
}

$("input-form").addEventListener("submit", (e) => {
  e.preventDefault();
  submitLine(input.value);
  input.value = "";
});
// Enter while an IME composition is open (Korean, Japanese, …) commits the syllable;
// it must not send half of it.
input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.isComposing || e.keyCode === 229)) e.preventDefault();
});
$("create-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const title = $("create-title").value.trim();
  if (title === "") return show("local", "방 제목을 지정해야 됩니다.");
  if (send({ type: "CSCreateRoom", title })) $("create-title").value = "";
});
$("leave").addEventListener("click", () => send({ type: "CSLeaveRoom" }));
$("refresh").addEventListener("click", refreshRooms);

renderMe();
connect();
input.focus();
