// End-to-end tests of the web client in a real headless Chromium (Debian's package),
// driven by playwright-core. Run by crates/server/tests/browser.rs, which passes the
// server binary in SERVER_BIN (and CHROMIUM, the browser). Exits 0 when every check
// passed; prints what failed otherwise. Every wait has a deadline; none is a sleep.
//
//   SERVER_BIN=target/debug/chat-server node web-tests/e2e.mjs
//   SCREENSHOT_DIR=docs/screenshots SERVER_BIN=… node web-tests/e2e.mjs   # also web-desktop.png, web-phone.png
//
// Most checks run against servers with --no-store (no accounts: the page must hide
// its account panel); the accounts and the moderation checks each start one with a
// temporary --data-dir.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const SHOTS = process.env.SCREENSHOT_DIR; // when set: web-desktop.png and web-phone.png go there

const SERVER = process.env.SERVER_BIN;
const BROWSER = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOT = process.env.SCREENSHOT; // where to save a screenshot of the page, if set
const TIMEOUT = 10_000;

// Servers still running and temporary directories: stopped and removed even when a
// check fails (and the script exits at once).
const running = new Set();
const temporary = new Set();
function fail(why) {
  console.error("FAILED: " + why);
  running.forEach((child) => child.kill("SIGKILL"));
  temporary.forEach((dir) => rmSync(dir, { recursive: true, force: true }));
  process.exit(1);
}

// Starts the server (with `extra` flags; without a `--data-dir` among them it keeps
// nothing: `--no-store`); resolves with { child, chat, web } once both are listening.
function startServer(webPort = 0, extra = []) {
  const store = extra.some((f) => f.startsWith("--data-dir=")) ? [] : ["--no-store"];
  return new Promise((resolve, reject) => {
    const child = spawn(SERVER, ["--port=0", `--web=127.0.0.1:${webPort}`, "--flood-control=off", "--workers=2", ...store, ...extra], {
      env: { ...process.env, NO_COLOR: "1", RUST_LOG: "info" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    running.add(child);
    child.on("exit", () => running.delete(child));
    let log = "";
    let chat = null, web = null;
    const timer = setTimeout(() => reject(new Error("the server did not start:\n" + log)), TIMEOUT);
    child.stderr.on("data", (d) => {
      log += d;
      chat ??= /listening on [0-9.]+:(\d+)/.exec(log)?.[1];
      web ??= /web client on https?:\/\/([0-9.:]+)\//.exec(log)?.[1];
      if (chat && web) {
        clearTimeout(timer);
        resolve({ child, chat: Number(chat), web });
      }
    });
    child.on("exit", (code) => reject(new Error(`the server exited (${code}):\n${log}`)));
  });
}

function stopServer(server) {
  return new Promise((resolve) => {
    server.child.removeAllListeners("exit");
    server.child.on("exit", () => {
      running.delete(server.child);
      resolve();
    });
    server.child.kill("SIGTERM");
  });
}

// A TCP client of the JSON format: 2-byte big-endian length + JSON.
class TcpClient {
  constructor(port) {
    this.messages = [];
    this.waiters = [];
    this.buf = Buffer.alloc(0);
    this.socket = net.connect(port, "127.0.0.1");
    this.ready = new Promise((r) => this.socket.on("connect", () => {
      this.name = `(127.0.0.1, ${this.socket.localPort})`;
      r();
    }));
    this.socket.on("data", (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 2 && this.buf.length >= 2 + this.buf.readUInt16BE(0)) {
        const len = this.buf.readUInt16BE(0);
        this.messages.push(JSON.parse(this.buf.subarray(2, 2 + len).toString("utf8")));
        this.buf = this.buf.subarray(2 + len);
      }
      this.waiters.forEach((w) => w());
    });
  }
  send(message) {
    const body = Buffer.from(JSON.stringify(message), "utf8");
    const head = Buffer.alloc(2);
    head.writeUInt16BE(body.length);
    this.socket.write(Buffer.concat([head, body]));
  }
  // The next message matching `pred`, skipping others.
  next(pred, what) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("TCP client never got " + what)), TIMEOUT);
      const check = () => {
        const i = this.messages.findIndex(pred);
        if (i >= 0) {
          clearTimeout(timer);
          this.waiters = this.waiters.filter((w) => w !== check);
          resolve(this.messages.splice(0, i + 1)[i]);
        }
      };
      this.waiters.push(check);
      check();
    });
  }
}

const checks = [];
async function check(name, body) {
  try {
    await body();
    checks.push(name);
    console.log("ok - " + name);
  } catch (e) {
    fail(`${name}: ${e.stack || e}`);
  }
}

// Recorded in the page before its own script runs: every message it sends on its
// WebSocket, parsed, in window.__sent.
function recordSent() {
  window.__sent = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    try {
      window.__sent.push(JSON.parse(data));
    } catch {
      window.__sent.push({ type: "(not JSON)" });
    }
    return send.call(this, data);
  };
}
const sentCount = (p) => p.evaluate(() => window.__sent.length);
const sentSince = (p, n) => p.evaluate((from) => window.__sent.slice(from), n);

// Every chat line in the log as "member: text" (one's own without " (나)"), to find a
// line shown twice.
const chatLines = (p) => p.evaluate(() => [...document.querySelectorAll("#log li.chat")].map((li) =>
  li.querySelector(".who").textContent.replace(/ \(나\)$/, "") + li.lastChild.data));
async function noLineTwice(p) {
  const lines = await chatLines(p);
  const twice = lines.filter((l, i) => lines.indexOf(l) !== i);
  if (twice.length) throw new Error("shown twice: " + JSON.stringify(twice));
  return lines;
}

// Waits for a line of the log of class `cls` whose text is exactly `text`.
const waitLine = (p, cls, text) => p.waitForFunction(([c, t]) =>
  [...document.querySelectorAll(`#log li.${c}`)].some((li) => li.lastChild?.data === t), [cls, text]);
const lineCount = (p, cls, text) => p.evaluate(([c, t]) =>
  [...document.querySelectorAll(`#log li.${c}`)].filter((li) => li.lastChild?.data === t).length, [cls, text]);

// Every direct-message line of the log (PROTOCOL.md §7.5): its class, the other
// party, the element that shows it, the text, the <time>, what is seen (without the
// words for screen readers) and what is read (without the arrow, which is hidden from them).
const directLines = (p) => p.evaluate(() => [...document.querySelectorAll("#log li.direct")].map((li) => {
  const without = (selector) => {
    const copy = li.cloneNode(true);
    copy.querySelectorAll(selector).forEach((el) => el.remove());
    return copy.textContent;
  };
  const who = li.querySelector(".who");
  return {
    cls: li.className, who: who.textContent, tag: who.tagName, text: li.lastChild.data,
    time: li.querySelector("time").dateTime, seen: without(".visually-hidden"), read: without("[aria-hidden=true]"),
  };
}));

// Stubs document.hidden (headless Chromium cannot hide a tab) and sends the event.
const setHidden = (p, hidden) => p.evaluate((h) => {
  Object.defineProperty(document, "hidden", { configurable: true, get: () => h });
  document.dispatchEvent(new Event("visibilitychange"));
}, hidden);

// In the page before its own script: the server's SCHello reaches it without
// `feature` ("direct", "moderation"), as from a server that does not offer it.
function hideFeature(feature) {
  const add = WebSocket.prototype.addEventListener;
  WebSocket.prototype.addEventListener = function (type, listener, ...rest) {
    if (type !== "message") return add.call(this, type, listener, ...rest);
    return add.call(this, type, (event) => {
      let data = event.data;
      try {
        const msg = JSON.parse(data);
        if (msg.type === "SCHello") data = JSON.stringify({ ...msg, features: msg.features.filter((f) => f !== feature) });
      } catch {
        // not JSON: as it came
      }
      listener.call(this, new MessageEvent("message", { data }));
    }, ...rest);
  };
}

// Runs axe-core (injected already) in `p`; throws on serious or critical violations.
async function axeAudit(p, label) {
  const found = await p.evaluate(async () => (await window.axe.run(document)).violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => v.id + ": " + v.nodes.map((n) => n.target.join(" ")).join(", ")));
  if (found.length) throw new Error(label + ": " + found.join("; "));
}

// HH:MM of `ms` in this machine's time zone (the browser's too).
const hhmm = (ms) => {
  const d = new Date(ms);
  return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
};

let server = await startServer();
const browser = await chromium.launch({
  executablePath: BROWSER,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 600 } });
  page.setDefaultTimeout(TIMEOUT);
  await page.addInitScript(recordSent);
  const problems = [];
  page.on("console", (m) => m.type() === "error" && problems.push("console: " + m.text()));
  page.on("pageerror", (e) => problems.push("page error: " + e));
  page.on("requestfailed", (r) => problems.push("failed: " + r.url()));
  page.on("response", (r) => r.status() >= 400 && problems.push(r.status() + " " + r.url()));
  const lastLine = (cls) => page.locator(`#log li.${cls}`).last();
  const type = async (line) => {
    await page.locator("#input").fill(line);
    await page.locator("#input").press("Enter");
  };

  await check("the page loads and connects", async () => {
    await page.goto(`http://${server.web}/`);
    await page.locator("#state.open").waitFor();
  });

  await check("the page opts in to the room-list push, history, accounts, resume, direct and moderation with one CSHello", async () => {
    const hellos = (await sentSince(page, 0)).filter((m) => m.type === "CSHello");
    if (JSON.stringify(hellos) !== JSON.stringify([{ type: "CSHello", features: ["rooms", "history", "accounts", "resume", "direct", "moderation"] }])) {
      throw new Error(JSON.stringify(hellos));
    }
  });

  await check("without a store (no accounts in SCHello) the account UI stays hidden", async () => {
    const shown = await page.evaluate(() => ["account", "me-account"].filter((id) => !document.getElementById(id).hidden));
    if (shown.length) throw new Error("shown: " + shown);
    if (await page.locator("#login-password").isVisible()) throw new Error("a password field is visible");
  });

  await check("/name and /create, with the name and room always visible", async () => {
    await type("/name 브라우저");
    await page.locator("#me-name", { hasText: "브라우저" }).waitFor();
    await type("/create 웹 방");
    await page.locator("#log li.system", { hasText: "방제[웹 방] 방에 입장했습니다." }).waitFor();
    await page.locator("#me-room", { hasText: "[웹 방]" }).waitFor();
  });

  const tcp = new TcpClient(server.chat);
  await tcp.ready;
  await check("a TCP client joins and chats with the page", async () => {
    tcp.send({ type: "CSJoinRoom", roomId: 1 });
    await tcp.next((m) => m.type === "SCSystemMessage" && m.text === "방제[웹 방] 방에 입장했습니다.", "its entry");
    await page.locator("#log li.system", { hasText: `[${tcp.name}] 님이 입장했습니다.` }).waitFor();
    await type("안녕하세요 <b>굵게</b>");
    const got = await tcp.next((m) => m.type === "SCChat", "the page's chat");
    if (got.member !== "브라우저" || got.text !== "안녕하세요 <b>굵게</b>") throw new Error(JSON.stringify(got));
    await page.locator("#log li.chat.mine", { hasText: "안녕하세요 <b>굵게</b>" }).waitFor();
    if ((await page.locator("#log b").count()) !== 0) throw new Error("chat text was injected as HTML");
  });

  await check("a chat that imitates a system message still reads as a chat", async () => {
    tcp.send({ type: "CSChat", text: "[시스템 메시지] 서버가 종료됩니다" });
    const line = page.locator("#log li", { hasText: "[시스템 메시지] 서버가 종료됩니다" });
    await line.waitFor();
    const cls = await line.getAttribute("class");
    if (cls !== "chat") throw new Error("styled as " + cls);
    const who = await line.locator(".who").textContent();
    if (who !== tcp.name) throw new Error("sender shown as " + who);
  });

  await check("the room list shows members and a click joins", async () => {
    await page.locator("#refresh").click();
    await page.locator("#rooms button", { hasText: "[1] 웹 방" }).waitFor();
    await page.locator("#rooms .members", { hasText: tcp.name }).waitFor();
    await page.locator("#leave").click();
    await page.locator("#me-room", { hasText: "방 밖" }).waitFor();
    await tcp.next((m) => m.type === "SCSystemMessage" && m.text === "[브라우저] 님이 퇴장했습니다.", "the page's leave");
    await page.locator("#rooms button", { hasText: "[1] 웹 방" }).click();
    await page.locator("#me-room", { hasText: "[웹 방]" }).waitFor();
    await tcp.next((m) => m.type === "SCSystemMessage" && m.text === "[브라우저] 님이 입장했습니다.", "the page's join");
  });

  await check("Enter during an IME composition does not send half a syllable", async () => {
    const input = page.locator("#input");
    await input.fill("");
    await input.focus();
    const cdp = await page.context().newCDPSession(page);
    await page.keyboard.insertText("한");
    await cdp.send("Input.imeSetComposition", { text: "ㄱ", selectionStart: 1, selectionEnd: 1 });
    await cdp.send("Input.imeSetComposition", { text: "글", selectionStart: 1, selectionEnd: 1 });
    // Enter while composing: Chromium reports keyCode 229 / isComposing.
    await cdp.send("Input.dispatchKeyEvent", { type: "keyDown", key: "Enter", code: "Enter", windowsVirtualKeyCode: 229, text: "\r" });
    await cdp.send("Input.dispatchKeyEvent", { type: "keyUp", key: "Enter", code: "Enter", windowsVirtualKeyCode: 229 });
    await cdp.send("Input.insertText", { text: "글" });
    const value = await input.inputValue();
    if (value !== "한글") throw new Error(`the input holds ${JSON.stringify(value)}`);
    await input.press("Enter");
    const got = await tcp.next((m) => m.type === "SCChat", "the composed chat");
    if (got.text !== "한글") throw new Error("sent " + JSON.stringify(got.text));
  });

  const inView = (text) => page.evaluate((t) => {
    const wrap = document.getElementById("log-wrap").getBoundingClientRect();
    const li = [...document.querySelectorAll("#log li")].reverse().find((l) => l.textContent.includes(t));
    if (!li) return false;
    const r = li.getBoundingClientRect();
    return r.bottom <= wrap.bottom + 1 && r.top >= wrap.top - 1;
  }, text);

  await check("the current room is marked and times are shown", async () => {
    await page.locator('#rooms button[aria-current="true"]', { hasText: "[1] 웹 방" }).waitFor();
    const ok = await page.evaluate(() => {
      const t = document.querySelector("#log li.chat time");
      const d = new Date(t.dateTime);
      const hhmm = String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
      return t.textContent === hhmm && Math.abs(Date.now() - d) < 120_000;
    });
    if (!ok) throw new Error("no HH:MM <time datetime> on chats");
  });

  await check("the log follows 50 incoming and 30 own chats", async () => {
    for (let i = 1; i <= 50; i++) tcp.send({ type: "CSChat", text: `줄 ${i}` });
    await page.locator("#log li.chat", { hasText: "줄 50" }).waitFor();
    if (!(await inView("줄 50"))) throw new Error("line 50 is not in view");
    for (let i = 1; i <= 30; i++) await type(`내 줄 ${i}`);
    await page.locator("#log li.chat.mine", { hasText: "내 줄 30" }).waitFor();
    if (!(await inView("내 줄 30"))) throw new Error("own line 30 is not in view");
  });

  await check("scrolled up: a new message shows the chip and does not scroll", async () => {
    await page.evaluate(() => { document.getElementById("log-wrap").scrollTop = 0; });
    await page.waitForFunction(() => document.getElementById("log-wrap").scrollTop === 0);
    tcp.send({ type: "CSChat", text: "위에 있을 때 온 말" });
    await page.locator("#new-messages", { hasText: "새 메시지" }).waitFor();
    if ((await page.evaluate(() => document.getElementById("log-wrap").scrollTop)) !== 0) throw new Error("scrolled");
    if (await inView("위에 있을 때 온 말")) throw new Error("followed");
    await page.locator("#new-messages").click();
    await page.locator("#new-messages").waitFor({ state: "hidden" });
    if (!(await inView("위에 있을 때 온 말"))) throw new Error("the chip did not scroll down");
  });

  await check("a refused chat is never shown as one's own", async () => {
    await page.locator("#leave").click();
    await page.locator("#me-room", { hasText: "방 밖" }).waitFor();
    await type("혼잣말");
    await type("/rooms");
    await page.locator("#log li.system", { hasText: "[1] 웹 방" }).last().waitFor();
    if ((await page.locator("#log li.chat.mine", { hasText: "혼잣말" }).count()) !== 0) throw new Error("shown as sent");
    await page.locator("#log li.system", { hasText: "현재 대화방에 들어가 있지 않습니다." }).last().waitFor();
  });

  const other = new TcpClient(server.chat);
  await other.ready;
  await check("a room made elsewhere appears in the list by a push, the page sending nothing", async () => {
    const mark = await sentCount(page);
    other.send({ type: "CSCreateRoom", title: "둘째 방" });
    await other.next((m) => m.type === "SCSystemMessage" && m.text === "방제[둘째 방] 방에 입장했습니다.", "its room");
    // Pushed at most every 500 ms (PROTOCOL.md §7.1); the page no longer polls.
    await page.locator("#rooms button", { hasText: "[2] 둘째 방" }).waitFor({ timeout: 2000 });
    const members = await page.locator("#rooms li").nth(1).locator(".members").textContent();
    if (members !== `1명: ${other.name}`) throw new Error("members shown as " + JSON.stringify(members));
    const sent = await sentSince(page, mark);
    if (sent.length !== 0) throw new Error("the page sent " + JSON.stringify(sent));
  });

  await check("clicking another room switches, keeping focus across list updates", async () => {
    await page.locator("#rooms button", { hasText: "[1] 웹 방" }).click();
    await page.locator("#me-room", { hasText: "[웹 방]" }).waitFor();
    await page.locator("#rooms button", { hasText: "[2] 둘째 방" }).click();
    await page.locator("#me-room", { hasText: "[둘째 방]" }).waitFor();
    await tcp.next((m) => m.type === "SCSystemMessage" && m.text === "[브라우저] 님이 퇴장했습니다.", "the page leaving");
    await page.locator('#rooms button[aria-current="true"]', { hasText: "[2] 둘째 방" }).waitFor();
    // Focus and the buttons' nodes survive a list update (waited for, not slept on).
    await page.locator("#input").fill("쓰는 중");
    await page.locator("#input").focus();
    const before = await page.evaluate(() => {
      document.querySelector("#rooms li").dataset.mark = "same";
      return Number(document.getElementById("rooms").dataset.updates);
    });
    other.send({ type: "CSName", name: "둘째" }); // changes the list the next push brings
    await page.locator("#rooms .members", { hasText: "둘째" }).waitFor();
    await page.waitForFunction((n) => Number(document.getElementById("rooms").dataset.updates) > n, before);
    const state = await page.evaluate(() => [document.activeElement.id, document.getElementById("input").value, document.querySelector("#rooms li").dataset.mark]);
    if (JSON.stringify(state) !== JSON.stringify(["input", "쓰는 중", "same"])) throw new Error(JSON.stringify(state));
    await page.locator("#input").fill("");
    await page.locator("#rooms button", { hasText: "[1] 웹 방" }).click();
    await page.locator("#me-room", { hasText: "[웹 방]" }).waitFor();
    await tcp.next((m) => m.type === "SCSystemMessage" && m.text === "[브라우저] 님이 입장했습니다.", "the page back");
  });

  await check("a chat sent just after a change does not keep the change from the list", async () => {
    // A hello with "rooms" resets what the server compares its pushes with (§7.1): a page
    // that said hello after every request would never hear of this rename.
    const mark = await sentCount(page);
    other.send({ type: "CSName", name: "셋째" });
    await other.next((m) => m.type === "SCSystemMessage" && m.text === "이름이 셋째 으로 변경되었습니다.", "its rename");
    await type("목록이 바뀐 직후");
    const got = await tcp.next((m) => m.type === "SCChat", "the page's chat");
    if (got.text !== "목록이 바뀐 직후") throw new Error(JSON.stringify(got));
    await page.locator("#log li.chat.mine", { hasText: "목록이 바뀐 직후" }).waitFor();
    await page.locator("#rooms .members", { hasText: "1명: 셋째" }).waitFor({ timeout: 2000 });
    const types = (await sentSince(page, mark)).map((m) => m.type);
    if (types.includes("CSRooms") || types.includes("CSHello")) throw new Error("the page sent " + types);
  });

  await check("the title counts unread chats while the tab is hidden", async () => {
    // Headless Chromium cannot hide a tab: document.hidden is stubbed and the event sent.
    const setHidden = (hidden) => page.evaluate((h) => {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => h });
      document.dispatchEvent(new Event("visibilitychange"));
    }, hidden);
    await setHidden(true);
    for (const t of ["하나", "둘", "셋"]) tcp.send({ type: "CSChat", text: t });
    await page.waitForFunction(() => document.title === "(3) 채팅");
    await setHidden(false);
    await page.waitForFunction(() => document.title === "채팅");
  });

  await check("a reconnect goes back to the room and shows what was missed, no line twice", async () => {
    const entered = await page.locator("#log li.system", { hasText: "방제[웹 방] 방에 입장했습니다." }).count();
    const before = await noLineTwice(page);
    await page.evaluate(() => socket.close()); // the page's own socket (app.js)
    await tcp.next((m) => m.type === "SCSystemMessage" && m.text === "[브라우저] 님이 퇴장했습니다.", "the page gone");
    tcp.send({ type: "CSChat", text: "없는 동안 온 말" }); // the page reconnects after 0.5 s
    await tcp.next((m) => m.type === "SCSystemMessage" && m.text === "[브라우저] 님이 입장했습니다.", "the page back");
    await page.locator("#me-room", { hasText: "[웹 방]" }).waitFor();
    await page.waitForFunction((n) => [...document.querySelectorAll("#log li.system")]
      .filter((li) => li.textContent.endsWith("방제[웹 방] 방에 입장했습니다.")).length === n + 1, entered);
    const missed = page.locator("#log li.chat", { hasText: "없는 동안 온 말" });
    await missed.waitFor();
    if ((await missed.getAttribute("class")) !== "chat history") throw new Error("not shown as history");
    if ((await missed.locator(".earlier").textContent()) !== "이전") throw new Error("no 이전 badge");
    const after = await noLineTwice(page);
    // Everything shown before, and the one line missed: the room's last 50 came again.
    const expected = [...before, `${tcp.name}: 없는 동안 온 말`];
    if (JSON.stringify(after) !== JSON.stringify(expected)) throw new Error(JSON.stringify(after.slice(-5)));
    // The page's own chats kept their places and got the server's numbers.
    const own = await page.locator('#log li.chat.mine[data-seq]', { hasText: "내 줄 30" }).count();
    if (own !== 1) throw new Error("own line not numbered");
  });

  await check("a reload restores the name and the room, as the server sees them", async () => {
    await page.reload();
    await page.locator("#state.open").waitFor();
    await page.locator("#me-name", { hasText: "브라우저" }).waitFor();
    await page.locator("#me-room", { hasText: "[웹 방]" }).waitFor();
    await tcp.next((m) => m.type === "SCSystemMessage" && m.text === "[브라우저] 님이 입장했습니다.", "the reloaded page's join");
    tcp.send({ type: "CSRooms" });
    const list = await tcp.next((m) => m.type === "SCRoomsResult", "the list");
    if (!list.rooms.find((r) => r.roomId === 1).members.includes("브라우저")) throw new Error(JSON.stringify(list));
    // The room's last 50 chats as history, each once, the newest last.
    await page.waitForFunction(() => document.querySelectorAll("#log li.history").length === 50);
    const lines = await noLineTwice(page);
    if (lines.at(-1) !== `${tcp.name}: 없는 동안 온 말`) throw new Error(JSON.stringify(lines.slice(-3)));
  });
  other.socket.destroy();

  await check("axe-core: no serious or critical violations at 1280×800 and 390×844", async () => {
    // A context of its own: axe is injected as an inline script, which the page's CSP forbids.
    const context = await browser.newContext({ bypassCSP: true });
    try {
      const p = await context.newPage();
      p.setDefaultTimeout(TIMEOUT);
      await p.goto(`http://${server.web}/`);
      await p.locator("#state.open").waitFor();
      for (const line of ["/name 민지", "/join 1", "안녕하세요, 웹에서 들어왔어요"]) {
        await p.locator("#input").fill(line);
        await p.locator("#input").press("Enter");
      }
      await p.locator("#log li.chat.mine").waitFor();
      tcp.send({ type: "CSChat", text: "반가워요! 터미널에서 보내요." });
      await p.locator("#log li.chat", { hasText: "반가워요" }).waitFor();
      await p.locator('#rooms button[aria-current="true"]').waitFor();
      // Audited too: the room's earlier chats and the button for more.
      await p.locator("#log li.history").first().waitFor();
      await p.locator("#older").waitFor();
      await p.addScriptTag({ path: AXE });
      const audit = async (label) => {
        const found = await p.evaluate(async () => (await window.axe.run(document)).violations
          .filter((v) => v.impact === "serious" || v.impact === "critical")
          .map((v) => v.id + ": " + v.nodes.map((n) => n.target.join(" ")).join(", ")));
        if (found.length) throw new Error(label + ": " + found.join("; "));
      };
      await p.setViewportSize({ width: 1280, height: 800 });
      await audit("1280×800");
      await p.setViewportSize({ width: 390, height: 844 });
      await p.locator("#rooms-toggle[aria-expanded=false]").waitFor();
      await audit("390×844");
      await p.locator("#rooms-toggle").click();
      await audit("390×844, panel open");
    } finally {
      await context.close();
    }
  });

  // ---- direct messages (PROTOCOL.md §7.5): the page and a second page ---------------
  // The page (브라우저) is in [웹 방]; the other (귓속말상대) in no room. A context of
  // its own: the pages would share the remembered name; bypassCSP for axe.
  const dmContext = await browser.newContext({ bypassCSP: true });
  try {
    const dm = await dmContext.newPage();
    dm.setDefaultTimeout(TIMEOUT);
    await dm.addInitScript(recordSent);
    const dmErrors = [];
    dm.on("console", (m) => m.type() === "error" && dmErrors.push("console: " + m.text()));
    dm.on("pageerror", (e) => dmErrors.push("page error: " + e));
    const dmType = async (line) => {
      await dm.locator("#input").fill(line);
      await dm.locator("#input").press("Enter");
    };
    const recent = (iso) => Math.abs(Date.now() - new Date(iso)) < 120_000;

    await check("direct: /msg from a page in a room reaches a page in none as a 귓속말 line — sender, time, text as text; the sender sees the server's copy", async () => {
      await dm.goto(`http://${server.web}/`);
      await dm.locator("#state.open").waitFor();
      await dmType("/name 귓속말상대");
      await dm.locator("#me-name", { hasText: "귓속말상대" }).waitFor();
      await dm.locator("#me-room", { hasText: "방 밖" }).waitFor();
      const mark = await sentCount(page);
      await type("/msg 귓속말상대 <i>몰래</i> 하는 말");
      await dm.locator("#log li.direct.in").waitFor();
      const [got] = await directLines(dm);
      if (got.cls !== "direct in" || got.who !== "브라우저" || got.tag !== "BUTTON" || got.text !== ": <i>몰래</i> 하는 말" || !recent(got.time)) throw new Error(JSON.stringify(got));
      const at = hhmm(new Date(got.time).getTime());
      if (got.seen !== `${at} 귓속말 ← 브라우저: <i>몰래</i> 하는 말`) throw new Error("seen: " + got.seen);
      if (got.read !== `${at} 귓속말 받음, 보낸 사람 브라우저: <i>몰래</i> 하는 말`) throw new Error("read: " + got.read);
      if ((await dm.locator("#log i").count()) !== 0) throw new Error("the text was injected as HTML");
      await page.locator("#log li.direct.out", { hasText: "몰래" }).waitFor();
      const mine = (await directLines(page)).at(-1);
      if (mine.cls !== "direct out" || mine.who !== "귓속말상대" || mine.text !== ": <i>몰래</i> 하는 말" || !recent(mine.time)) throw new Error(JSON.stringify(mine));
      if (mine.seen !== `${hhmm(new Date(mine.time).getTime())} 귓속말 → 귓속말상대: <i>몰래</i> 하는 말`) throw new Error("seen: " + mine.seen);
      if (!mine.read.includes(" 귓속말 보냄, 받는 사람 귓속말상대: ")) throw new Error("read: " + mine.read);
      const sent = (await sentSince(page, mark)).filter((m) => m.type === "CSDirect");
      if (JSON.stringify(sent) !== JSON.stringify([{ type: "CSDirect", name: "귓속말상대", text: "<i>몰래</i> 하는 말" }])) throw new Error(JSON.stringify(sent));
      // Not a chat: the room's other member got nothing of it, and it is no chat line.
      if ((await page.locator("#log li.chat", { hasText: "몰래" }).count()) !== 0) throw new Error("shown as a chat");
      // A quoted name is the same name.
      await type('/msg "귓속말상대" 따옴표로 부른 말');
      await dm.locator("#log li.direct.in", { hasText: "따옴표로 부른 말" }).waitFor();
    });

    await check("direct: a received one counts as unread in the title, one's own copy does not", async () => {
      await setHidden(dm, true);
      await setHidden(page, true);
      await type("/msg 귓속말상대 안 보는 동안");
      await dm.waitForFunction(() => document.title === "(1) 채팅");
      await page.locator("#log li.direct.out", { hasText: "안 보는 동안" }).waitFor();
      if ((await page.title()) !== "채팅") throw new Error("the sender's title: " + (await page.title()));
      await setHidden(dm, false);
      await setHidden(page, false);
      await dm.waitForFunction(() => document.title === "채팅");
    });

    await check("direct: the sender's name is a button (keyboard too) that puts /msg NAME in the input; the answer reaches the page in its room", async () => {
      const who = dm.locator("#log li.direct.in button.who").last();
      if ((await who.getAttribute("title")) !== "브라우저 님에게 답장 (/msg 브라우저)") throw new Error("title: " + (await who.getAttribute("title")));
      await who.focus();
      await dm.keyboard.press("Enter");
      if ((await dm.locator("#input").inputValue()) !== "/msg 브라우저 ") throw new Error("input: " + (await dm.locator("#input").inputValue()));
      if ((await dm.evaluate(() => document.activeElement.id)) !== "input") throw new Error("focus is not in the input");
      await dm.keyboard.type("답장이에요");
      await dm.keyboard.press("Enter");
      const answer = page.locator("#log li.direct", { hasText: "답장이에요" });
      await answer.waitFor();
      if ((await answer.getAttribute("class")) !== "direct in") throw new Error("class " + (await answer.getAttribute("class")));
      if ((await answer.locator(".who").textContent()) !== "귓속말상대") throw new Error("sender");
      await dm.locator("#log li.direct.out", { hasText: "답장이에요" }).waitFor();
      // A click does the same.
      await dm.locator("#input").fill("");
      await dm.locator("#log li.direct.in button.who").first().click();
      if ((await dm.locator("#input").inputValue()) !== "/msg 브라우저 ") throw new Error("input after a click");
      await dm.locator("#input").fill("");
    });

    await check("direct: /ignore, then a /msg is refused with the server's text and not delivered; /unignore lets it through; the other refusals", async () => {
      const mark = await sentCount(dm);
      await dmType("/ignore 브라우저");
      await waitLine(dm, "system", "이제 브라우저 님의 귓속말을 받지 않습니다.");
      const sent = (await sentSince(dm, mark)).filter((m) => m.type === "CSIgnore");
      if (JSON.stringify(sent) !== JSON.stringify([{ type: "CSIgnore", name: "브라우저", ignore: true }])) throw new Error(JSON.stringify(sent));
      await type("/msg 귓속말상대 막힌 말");
      await waitLine(page, "system", "상대가 내 귓속말을 받지 않습니다.");
      if ((await page.locator("#log li.direct", { hasText: "막힌 말" }).count()) !== 0) throw new Error("the refused one is shown as sent");
      await dmType("/unignore 브라우저");
      await waitLine(dm, "system", "다시 브라우저 님의 귓속말을 받습니다.");
      await type("/msg 귓속말상대 다시 되는 말");
      await dm.locator("#log li.direct.in", { hasText: "다시 되는 말" }).waitFor();
      if ((await dm.locator("#log li.direct", { hasText: "막힌 말" }).count()) !== 0) throw new Error("the ignored one was delivered");
      await dmType("/unignore 브라우저");
      await waitLine(dm, "system", "차단하지 않은 이름입니다.");
      await dmType("/ignore 귓속말상대");
      await waitLine(dm, "system", "자기 자신은 차단할 수 없습니다.");
      await type("/msg 브라우저 나에게");
      await waitLine(page, "system", "자기 자신에게는 귓속말을 보낼 수 없습니다.");
      await type("/msg 없는사람 여보세요");
      await waitLine(page, "system", "그런 이름으로 접속한 사람이 없습니다.");
      // Wrong forms are not sent.
      const before = await sentCount(page);
      await type("/msg 귓속말상대");
      await waitLine(page, "local", "사용법: /msg 이름 내용");
      await type("/ignore");
      await waitLine(page, "local", "사용법: /ignore 이름");
      if ((await sentSince(page, before)).some((m) => m.type === "CSDirect" || m.type === "CSIgnore")) throw new Error("sent");
      await dmType("/help");
      await waitLine(dm, "local", "/ignore 이름 — 그 사람의 귓속말을 받지 않습니다 (이 연결 동안; 새로고침하면 풀립니다).");
    });

    await check("direct: axe-core with sent and received 귓속말 lines, light and dark, 1280×800 and 390×844", async () => {
      await dm.addScriptTag({ path: AXE });
      await dm.setViewportSize({ width: 1280, height: 800 });
      await dm.locator("#log li.direct.out").first().waitFor();
      await dm.locator("#log li.direct.in button.who").last().focus(); // its focus ring too
      await axeAudit(dm, "light, 1280×800");
      await dm.emulateMedia({ colorScheme: "dark" });
      await axeAudit(dm, "dark, 1280×800");
      await dm.setViewportSize({ width: 390, height: 844 });
      await axeAudit(dm, "dark, 390×844");
      await dm.emulateMedia({ colorScheme: "light" });
      await axeAudit(dm, "light, 390×844");
      if (dmErrors.length) throw new Error(dmErrors.join("\n"));
    });

    await check("direct: where the server does not offer it, /msg, /ignore and /unignore say so and send nothing", async () => {
      const p = await dmContext.newPage();
      p.setDefaultTimeout(TIMEOUT);
      await p.addInitScript(recordSent);
      await p.addInitScript(hideFeature, "direct");
      await p.goto(`http://${server.web}/`);
      await p.locator("#state.open").waitFor();
      const say = async (line) => {
        await p.locator("#input").fill(line);
        await p.locator("#input").press("Enter");
      };
      await say("/msg 브라우저 안녕하세요");
      await say("/ignore 브라우저");
      await say("/unignore 브라우저");
      await p.waitForFunction(() => [...document.querySelectorAll("#log li.local")].filter((li) => li.lastChild.data === "이 서버에서는 귓속말을 쓸 수 없습니다.").length === 3);
      await say("/help");
      await waitLine(p, "local", "이 서버에서는 귓속말 명령어(/msg, /ignore, /unignore)를 쓸 수 없습니다.");
      if ((await sentSince(p, 0)).some((m) => m.type === "CSDirect" || m.type === "CSIgnore")) throw new Error("sent");
      await p.close();
    });
  } finally {
    await dmContext.close();
  }

  await check("commands are the reference client's", async () => {
    await type("/help");
    await page.locator("#log li.local", { hasText: "/shutdown — 서버를 종료합니다 (권한이 있을 때만)." }).waitFor();
    await type("/join");
    await page.locator("#log li.local", { hasText: "방 번호를 입력해야 됩니다." }).last().waitFor();
    await type("/nope");
    await page.locator("#log li.local", { hasText: "알 수 없는 명령어입니다: /nope (/help 로 명령어를 볼 수 있습니다)" }).waitFor();
    await type("/shutdown");
    await page.locator("#log li.system", { hasText: "서버를 종료할 권한이 없습니다." }).waitFor();
    // Without accounts on the server: nothing is sent, and the password is not shown.
    const mark = await sentCount(page);
    await type("/login 브라우저 비밀번호입니다");
    await waitLine(page, "local", "/login 브라우저 ********");
    await waitLine(page, "local", "이 서버에서는 계정을 쓸 수 없습니다.");
    if ((await sentSince(page, mark)).some((m) => m.type === "CSLogin")) throw new Error("CSLogin sent");
    if ((await page.locator("body").innerText()).includes("비밀번호입니다")) throw new Error("the password is shown");
  });

  if (SHOT) {
    await page.screenshot({ path: SHOT });
  }

  await check("phone width: the input stays, the room panel folds away behind a toggle", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const toggle = page.locator("#rooms-toggle");
    await page.locator("#rooms-toggle[aria-expanded=false]").waitFor(); // closed by default on a phone
    if (!(await page.locator("#input").isVisible()) || (await page.locator("#rooms").isVisible())) throw new Error("layout");
    await toggle.click();
    await page.locator("#rooms").waitFor({ state: "visible" });
    if ((await toggle.getAttribute("aria-expanded")) !== "true") throw new Error("aria-expanded not true");
    await page.setViewportSize({ width: 900, height: 600 });
  });

  await check("no console errors and no failed requests", async () => {
    if (problems.length) throw new Error(problems.join("\n"));
  });

  await check("the page says when the server goes and reconnects when it is back", async () => {
    const port = Number(server.web.split(":")[1]);
    await stopServer(server);
    await page.locator("#state.closed").waitFor();
    server = await startServer(port);
    await page.locator("#state.open").waitFor({ timeout: 20_000 });
    // The new server knows the name again; its room 1 is gone, so the page stays outside.
    await page.locator("#me-name", { hasText: "브라우저" }).waitFor();
    await page.locator("#log li.local", { hasText: "전에 있던 방 [1] 웹 방 에 다시 들어가지 못해 방 밖에 있습니다." }).waitFor();
    await page.locator("#me-room", { hasText: "방 밖" }).waitFor();
    await type("/rooms");
    await page.locator("#log li.system", { hasText: "개설된 방이 없습니다." }).waitFor();
  });
  tcp.socket.destroy();

  await check("a room's earlier chats show as history with the server's times; 이전 메시지 더 보기 loads older ones", async () => {
    // A server keeping 60 chats a room: of 70, 11 to 70 are kept; 50 come on entering.
    const kept = await startServer(0, ["--history=60"]);
    const context = await browser.newContext();
    try {
      const writer = new TcpClient(kept.chat);
      await writer.ready;
      writer.send({ type: "CSHello", features: ["history"] });
      writer.send({ type: "CSCreateRoom", title: "기록 방" });
      for (let i = 1; i <= 70; i++) writer.send({ type: "CSChat", text: `기록 ${i}` });
      writer.send({ type: "CSHistory", count: 200 });
      const all = await writer.next((m) => m.type === "SCHistory", "the room's history");
      const texts = all.lines.map((l) => l.text);
      if (texts[0] !== "기록 11" || texts.length !== 60 || all.more !== false) throw new Error(JSON.stringify([texts[0], texts.length, all.more]));

      const p = await context.newPage();
      p.setDefaultTimeout(TIMEOUT);
      const errors = [];
      p.on("console", (m) => m.type() === "error" && errors.push("console: " + m.text()));
      p.on("pageerror", (e) => errors.push("page error: " + e));
      await p.addInitScript(recordSent);
      await p.goto(`http://${kept.web}/`);
      await p.locator("#state.open").waitFor();
      await p.locator("#input").fill("/join 1");
      await p.locator("#input").press("Enter");
      await p.locator("#me-room", { hasText: "[기록 방]" }).waitFor();
      await p.waitForFunction(() => document.querySelectorAll("#log li.history").length === 50);
      // Each as "HH:MM 이전 NAME: TEXT", its <time> the server's, oldest first, right after the entry.
      const shown = () => p.evaluate(() => [...document.querySelectorAll("#log li.history")].map((li) =>
        [li.querySelector("time").dateTime, li.textContent]));
      const line = (l) => [new Date(l.time).toISOString(), `${hhmm(l.time)} 이전 ${writer.name}: ${l.text}`];
      const want = (from) => all.lines.filter((l) => l.seq >= from).map(line);
      let got = await shown();
      if (JSON.stringify(got) !== JSON.stringify(want(21))) throw new Error(JSON.stringify(got.slice(0, 2)));
      const entry = await p.evaluate(() => document.querySelector("#log li.history").previousElementSibling.textContent);
      if (!entry.endsWith("방제[기록 방] 방에 입장했습니다.")) throw new Error("before the history: " + entry);

      const older = p.locator("#older");
      if ((await older.textContent()) !== "이전 메시지 더 보기" || !(await older.isVisible())) throw new Error("no button");
      const mark = await sentCount(p);
      await older.click();
      await p.waitForFunction(() => document.querySelectorAll("#log li.history").length === 60);
      got = await shown();
      if (JSON.stringify(got) !== JSON.stringify(want(11))) throw new Error(JSON.stringify(got.slice(0, 2)));
      const asked = (await sentSince(p, mark)).filter((m) => m.type === "CSHistory" && m.count !== 1);
      if (JSON.stringify(asked) !== JSON.stringify([{ type: "CSHistory", count: 50, before: 21 }])) throw new Error(JSON.stringify(asked));
      await older.waitFor({ state: "hidden" }); // nothing older is kept
      const top = await p.evaluate(() => {
        const wrap = document.getElementById("log-wrap").getBoundingClientRect();
        const r = document.querySelector("#log li.history").getBoundingClientRect();
        return r.top >= wrap.top - 1 && r.bottom <= wrap.bottom + 1;
      });
      if (!top) throw new Error("the oldest line loaded is not in view");

      // A live chat after them is not history, and bears the server's time too (it
      // pushes 11 out of the kept 60, already shown).
      writer.send({ type: "CSChat", text: "기록 뒤 새 말" });
      writer.send({ type: "CSHistory", count: 1 });
      const newest = (await writer.next((m) => m.type === "SCHistory", "the newest line")).lines[0];
      if (newest.text !== "기록 뒤 새 말") throw new Error(JSON.stringify(newest));
      const live = p.locator("#log li", { hasText: "기록 뒤 새 말" });
      await live.waitFor();
      if ((await live.getAttribute("class")) !== "chat") throw new Error("class " + (await live.getAttribute("class")));
      const liveTime = await live.locator("time").getAttribute("datetime");
      if (liveTime !== new Date(newest.time).toISOString()) throw new Error(`time ${liveTime}, the server's ${newest.time}`);

      await noLineTwice(p);
      if ((await p.locator("#log li.chat").count()) !== 61) throw new Error("lines: " + (await p.locator("#log li.chat").count()));
      if (errors.length) throw new Error(errors.join("\n"));
      writer.socket.destroy();
    } finally {
      await context.close();
      await stopServer(kept);
    }
  });

  await check("over https: the page loads and chats over wss with a TCP client", async () => {
    // A self-signed pair made for this run by the server's own `cert` command.
    const dir = mkdtempSync(join(tmpdir(), "chat-e2e-tls-"));
    let secure = null;
    let context = null;
    try {
      execFileSync(SERVER, ["cert", "--self-signed", "127.0.0.1", `--out-dir=${dir}`]);
      secure = await startServer(0, [`--tls-cert=${join(dir, "cert.pem")}`, `--tls-key=${join(dir, "key.pem")}`]);
      // The browser is told to accept the test's certificate (as --ignore-certificate-errors).
      context = await browser.newContext({ ignoreHTTPSErrors: true });
      const secPage = await context.newPage();
      secPage.setDefaultTimeout(TIMEOUT);
      const sent = [];
      secPage.on("websocket", (ws) => sent.push(ws.url()));
      await secPage.goto(`https://${secure.web}/`);
      await secPage.locator("#state.open").waitFor();
      if (!sent.some((url) => url.startsWith("wss://"))) throw new Error("no wss:// socket: " + sent);
      await secPage.locator("#input").fill("/create 보안 방");
      await secPage.locator("#input").press("Enter");
      await secPage.locator("#log li.system", { hasText: "방제[보안 방] 방에 입장했습니다." }).waitFor();
      const plain = new TcpClient(secure.chat);
      await plain.ready;
      plain.send({ type: "CSJoinRoom", roomId: 1 });
      await plain.next((m) => m.type === "SCSystemMessage" && m.text === "방제[보안 방] 방에 입장했습니다.", "its entry");
      await secPage.locator("#input").fill("암호로 안녕");
      await secPage.locator("#input").press("Enter");
      const got = await plain.next((m) => m.type === "SCChat", "the https page's chat");
      if (got.text !== "암호로 안녕") throw new Error(JSON.stringify(got));
      plain.send({ type: "CSChat", text: "평문에서 안녕" });
      await secPage.locator("#log li.chat", { hasText: "평문에서 안녕" }).waitFor();
      plain.socket.destroy();
    } finally {
      if (context) await context.close();
      if (secure) await stopServer(secure);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // ---- accounts (PROTOCOL.md §7.2, §7.4): a server with a store of its own ----------
  const dataDir = mkdtempSync(join(tmpdir(), "chat-e2e-store-"));
  temporary.add(dataDir);
  const store = await startServer(0, [`--data-dir=${dataDir}`]);
  // bypassCSP: axe is injected as an inline script, which the page's CSP forbids.
  const accounts = await browser.newContext({ bypassCSP: true });
  const guests = [];
  try {
    const ap = await accounts.newPage();
    ap.setDefaultTimeout(TIMEOUT);
    await ap.addInitScript(recordSent);
    const errors = [];
    ap.on("console", (m) => m.type() === "error" && errors.push("console: " + m.text()));
    ap.on("pageerror", (e) => errors.push("page error: " + e));
    const typeIn = async (line) => {
      await ap.locator("#input").fill(line);
      await ap.locator("#input").press("Enter");
    };
    const PASSWORD = "첫-비밀번호-1234";
    const NEW_PASSWORD = "둘째-비밀번호-5678";
    const RESUME_FAILED = "저장된 로그인이 만료되었거나 맞지 않습니다. 비밀번호로 다시 로그인하세요.";
    const storage = () => ap.evaluate(() => Object.fromEntries(Object.keys(localStorage).map((k) => [k, localStorage.getItem(k)])));
    const kept = async () => JSON.parse((await storage())["chat.login"] ?? "null");
    // No password in localStorage, in anything the page shows, or left in a field.
    const noPasswordAnywhere = async () => {
      const where = JSON.stringify(await storage()) + (await ap.locator("body").innerText())
        + JSON.stringify(await ap.evaluate(() => [...document.querySelectorAll("input")].map((i) => i.value)));
      for (const pw of [PASSWORD, NEW_PASSWORD]) if (where.includes(pw)) throw new Error("a password is kept or shown");
    };
    const accountShown = async (name) => {
      await ap.locator("#me-account").waitFor();
      await ap.locator("#me-account-name", { hasText: name }).waitFor();
      // Read aloud after the room: ", 로그인: NAME" (the comma is for screen readers only).
      const header = await ap.locator("#me-account").textContent();
      if (header !== ", 로그인: " + name) throw new Error("the header says " + JSON.stringify(header));
      if ((await ap.locator("#account-name").textContent()) !== name) throw new Error("the panel does not name the account");
    };
    const loggedOut = async () => {
      await ap.locator("#account-out").waitFor();
      await ap.locator("#login-form").waitFor();
      if (await ap.locator("#me-account").isVisible()) throw new Error("the header still shows an account");
    };
    const roomItem = (label) => ap.locator("#rooms li").filter({ has: ap.locator(".title", { hasText: label }) });

    await check("accounts: the panel appears where the server keeps them; registering the name from the page logs in and keeps a token, never the password", async () => {
      await ap.goto(`http://${store.web}/`);
      await ap.locator("#state.open").waitFor();
      await loggedOut();
      if ((await kept()) !== null) throw new Error("a login is kept already");
      await ap.locator("#name-input").fill("계정주");
      await ap.locator("#name-form button").click();
      await ap.locator("#me-name", { hasText: "계정주" }).waitFor();
      await ap.locator("#register-details summary").click();
      const hint = await ap.locator("#register-hint").innerText();
      if (hint !== "위의 ‘내 이름’이 계정 이름이 됩니다 (지금: 계정주). 가입하면 그 이름은 로그인해야 쓸 수 있습니다.") throw new Error(hint);
      if ((await ap.locator("#register-password").getAttribute("type")) !== "password"
        || (await ap.locator("#register-password").getAttribute("autocomplete")) !== "new-password"
        || (await ap.locator("#login-password").getAttribute("autocomplete")) !== "current-password") throw new Error("password fields");
      await ap.locator("#register-password").fill(PASSWORD);
      await ap.locator("#register-form button[type=submit]").click();
      const done = "이름 계정주 을 계정으로 등록했습니다. 이제 이 이름은 로그인해야 쓸 수 있습니다.";
      await waitLine(ap, "system", done);
      await accountShown("계정주");
      await ap.locator("#account-status", { hasText: done }).waitFor();
      if ((await ap.locator("#account-status").textContent()) !== done) throw new Error("status: " + (await ap.locator("#account-status").textContent()));
      const login = await kept();
      if (login?.name !== "계정주" || !/^[0-9a-f]{64}$/.test(login.token)) throw new Error(JSON.stringify(login));
      const days = (login.expires - Date.now()) / 86_400_000;
      if (days < 29 || days > 31) throw new Error("expires in " + days + " days");
      await ap.locator("#account-kept").waitFor();
      const sent = (await sentSince(ap, 0)).filter((m) => m.type === "CSRegister");
      if (sent.length !== 1 || sent[0].password !== PASSWORD) throw new Error("sent " + sent.length + " CSRegister");
      await noPasswordAnywhere();
    });

    const guest = new TcpClient(store.chat);
    guests.push(guest);
    await guest.ready;
    await check("accounts: a room made while logged in is marked 내 방 with a delete button; left, it stays in the list (비어 있음)", async () => {
      await typeIn("/create 오래 가는 방");
      await waitLine(ap, "system", "방제[오래 가는 방] 방에 입장했습니다.");
      await waitLine(ap, "system", "1번 방이 내 계정에 등록되었습니다. 비어 있어도 남고, /delete 1 으로 지울 수 있습니다.");
      const mine = roomItem("[1] 오래 가는 방");
      await mine.locator(".mine").waitFor();
      if ((await mine.locator(".mine").textContent()) !== "내 방") throw new Error("badge");
      const del = mine.locator("button.delete");
      await del.waitFor();
      if ((await del.textContent()) !== "지우기" || (await del.getAttribute("aria-label")) !== "[1] 오래 가는 방 방 지우기") throw new Error("delete button");
      // A guest's room: no badge, no delete button.
      guest.send({ type: "CSCreateRoom", title: "손님 방" });
      await guest.next((m) => m.type === "SCSystemMessage" && m.text === "방제[손님 방] 방에 입장했습니다.", "its room");
      const theirs = roomItem("[2] 손님 방");
      await theirs.waitFor();
      if ((await theirs.locator(".mine").isVisible()) || (await theirs.locator("button.delete").isVisible())) throw new Error("a guest's room is marked as ours");
      await ap.locator("#leave").click();
      await ap.locator("#me-room", { hasText: "방 밖" }).waitFor();
      await mine.locator(".members", { hasText: "(비어 있음)" }).waitFor();
      if ((await mine.locator(".members").textContent()) !== "(비어 있음)") throw new Error("members");
      await mine.locator(".mine").waitFor();
    });

    await check("accounts: a reload logs in again with the kept token first — no password typed — and restores the name and the room", async () => {
      // Back in the room, so that there is a room to restore after the login.
      await roomItem("[1] 오래 가는 방").locator("button.room").click();
      await ap.locator("#me-room", { hasText: "[오래 가는 방]" }).waitFor();
      const token = (await kept()).token;
      await ap.reload();
      await ap.locator("#state.open").waitFor();
      await accountShown("계정주");
      await ap.locator("#me-name", { hasText: "계정주" }).waitFor();
      await ap.locator("#me-room", { hasText: "[오래 가는 방]" }).waitFor();
      await waitLine(ap, "system", "계정주 으로 로그인했습니다.");
      const sent = await sentSince(ap, 0);
      const types = sent.map((m) => m.type);
      const resume = sent.filter((m) => m.type === "CSResume");
      if (resume.length !== 1 || resume[0].name !== "계정주" || resume[0].token !== token) throw new Error(JSON.stringify(resume));
      if (sent.some((m) => "password" in m || m.type === "CSLogin")) throw new Error("a password was sent: " + types);
      // CSResume first, before the room. The name comes with the login: a CSName only
      // for it again, should the reloaded page's old connection still hold it a moment.
      if (types.indexOf("CSResume") > types.indexOf("CSJoinRoom")) throw new Error(types.join(","));
      const names = sent.map((m, i) => [m, i]).filter(([m]) => m.type === "CSName");
      if (names.some(([m, i]) => m.name !== "계정주" || i < types.indexOf("CSResume"))) throw new Error(JSON.stringify(names));
      if (JSON.stringify(types.filter((t) => t === "CSHello")) !== '["CSHello"]') throw new Error(types.join(","));
      // The kept token is the same one (resume hands out none), and the room still ours.
      if ((await kept()).token !== token) throw new Error("the token changed");
      await roomItem("[1] 오래 가는 방").locator(".mine").waitFor();
      await noPasswordAnywhere();
    });

    await check("accounts: /password is shown masked and replaces the kept token; /help lists the account commands", async () => {
      const token = (await kept()).token;
      await typeIn(`/password ${PASSWORD} ${NEW_PASSWORD}`);
      await waitLine(ap, "local", "/password ******** ********");
      await waitLine(ap, "system", "비밀번호를 바꿨습니다.");
      await ap.waitForFunction((old) => JSON.parse(localStorage.getItem("chat.login") ?? "null")?.token !== old, token);
      const login = await kept();
      if (login.name !== "계정주" || !/^[0-9a-f]{64}$/.test(login.token)) throw new Error(JSON.stringify(login));
      await typeIn("/help");
      await waitLine(ap, "local", "/login 이름 비밀번호 — 계정에 로그인해 그 이름을 씁니다.");
      await waitLine(ap, "local", "/delete 번호 — 내 계정에 등록된 그 번호의 방을 지웁니다 (멤버가 있으면 모두 나간 뒤에 사라집니다).");
      await typeIn("/register");
      await waitLine(ap, "local", "사용법: /register 비밀번호");
      await noPasswordAnywhere();
    });

    await check("accounts: the delete button asks twice, then the empty room is gone", async () => {
      await ap.locator("#leave").click();
      await ap.locator("#me-room", { hasText: "방 밖" }).waitFor();
      const mine = roomItem("[1] 오래 가는 방");
      await mine.locator(".members", { hasText: "(비어 있음)" }).waitFor();
      const mark = await sentCount(ap);
      const del = mine.locator("button.delete");
      await del.click();
      if ((await del.textContent()) !== "정말 지우기") throw new Error("no second step: " + (await del.textContent()));
      if ((await sentSince(ap, mark)).some((m) => m.type === "CSDeleteRoom")) throw new Error("deleted on the first click");
      await del.click();
      await waitLine(ap, "system", "1번 방을 지웠습니다.");
      await ap.locator("#account-status", { hasText: "1번 방을 지웠습니다." }).waitFor();
      await mine.waitFor({ state: "detached" });
      // The focused delete button went with its room: focus is not left on nothing.
      if ((await ap.evaluate(() => document.activeElement.id)) !== "input") throw new Error("focus lost");
      const asked = (await sentSince(ap, mark)).filter((m) => m.type === "CSDeleteRoom");
      if (JSON.stringify(asked) !== JSON.stringify([{ type: "CSDeleteRoom", roomId: 1 }])) throw new Error(JSON.stringify(asked));
      if ((await storage())["chat.owned"]?.includes("1")) throw new Error("still kept as ours: " + (await storage())["chat.owned"]);
      // Typed: someone else's room is refused with the server's text.
      await typeIn("/delete 2");
      await waitLine(ap, "system", "내 계정에 등록된 방이 아닙니다.");
    });

    await check("accounts: /logout forgets the login; after a reload the page is a guest with the login form", async () => {
      await typeIn("/logout");
      await waitLine(ap, "system", "로그아웃했습니다.");
      await loggedOut();
      await ap.locator("#me-name", { hasText: "(127.0.0.1," }).waitFor();
      const after = await storage();
      if ("chat.login" in after || "chat.name" in after) throw new Error(JSON.stringify(Object.keys(after)));
      if ((await ap.locator("#login-name").inputValue()) !== "계정주") throw new Error("the login form does not offer the account");
      await ap.reload();
      await ap.locator("#state.open").waitFor();
      await loggedOut();
      const types = (await sentSince(ap, 0)).map((m) => m.type);
      if (types.includes("CSResume")) throw new Error(types.join(","));
      if ((await ap.locator("#me-name").textContent()) !== "기본 이름") throw new Error("not the default name");
    });

    await check("accounts: /login NAME PASSWORD is shown as /login NAME ******** and logs in", async () => {
      await typeIn(`/login 계정주 ${NEW_PASSWORD}`);
      await waitLine(ap, "local", "/login 계정주 ********");
      await waitLine(ap, "system", "계정주 으로 로그인했습니다.");
      await accountShown("계정주");
      await ap.locator("#me-name", { hasText: "계정주" }).waitFor();
      await ap.waitForFunction(() => localStorage.getItem("chat.login") !== null);
      if ((await kept()).name !== "계정주") throw new Error(JSON.stringify(await kept()));
      await noPasswordAnywhere();
    });

    await check("accounts: a tampered token is refused: the login form with the server's text, no name restore; the form logs in again", async () => {
      await ap.evaluate(() => {
        const login = JSON.parse(localStorage.getItem("chat.login"));
        localStorage.setItem("chat.login", JSON.stringify({ ...login, token: "0".repeat(64) }));
      });
      await ap.reload();
      await ap.locator("#state.open").waitFor();
      await waitLine(ap, "system", RESUME_FAILED);
      await loggedOut();
      if ((await ap.locator("#account-status").textContent()) !== RESUME_FAILED) throw new Error("status: " + (await ap.locator("#account-status").textContent()));
      if ((await ap.locator("#login-name").inputValue()) !== "계정주") throw new Error("login name not offered");
      if ((await kept()) !== null) throw new Error("the refused token is kept");
      // The account's name is not asked for (it would be refused as registered).
      const types = (await sentSince(ap, 0)).map((m) => m.type);
      if (types.includes("CSName")) throw new Error(types.join(","));
      if ((await ap.locator("#me-name").textContent()) !== "기본 이름") throw new Error("not the default name");
      await ap.locator("#login-password").fill(NEW_PASSWORD);
      await ap.locator("#login-form button[type=submit]").click();
      await waitLine(ap, "system", "계정주 으로 로그인했습니다.");
      await accountShown("계정주");
      if ((await ap.locator("#login-password").inputValue()) !== "") throw new Error("the password field was not emptied");
      // The form is hidden now: focus moved to the panel's logged-in part.
      if ((await ap.evaluate(() => document.activeElement.id)) !== "logout") throw new Error("focus lost");
      await ap.waitForFunction(() => localStorage.getItem("chat.login") !== null);
      // A wrong password: the server's answer beside the form.
      await typeIn("/logout");
      await waitLine(ap, "system", "로그아웃했습니다.");
      await loggedOut();
      await ap.locator("#login-name").fill("계정주");
      await ap.locator("#login-password").fill("틀린-비밀번호-0000");
      await ap.locator("#login-form button[type=submit]").click();
      await ap.locator("#account-status", { hasText: "이름 또는 비밀번호가 맞지 않습니다." }).waitFor();
      await noPasswordAnywhere();
    });

    await check("accounts: a kept login past its expiry is dropped without being sent", async () => {
      await ap.locator("#login-password").fill(NEW_PASSWORD);
      await ap.locator("#login-form button[type=submit]").click();
      await accountShown("계정주");
      await ap.waitForFunction(() => localStorage.getItem("chat.login") !== null);
      await ap.evaluate(() => {
        const login = JSON.parse(localStorage.getItem("chat.login"));
        localStorage.setItem("chat.login", JSON.stringify({ ...login, expires: Date.now() - 1000 }));
      });
      await ap.reload();
      await ap.locator("#state.open").waitFor();
      await waitLine(ap, "local", "저장된 로그인이 만료되었습니다. 비밀번호로 다시 로그인하세요.");
      await loggedOut();
      if ((await sentSince(ap, 0)).some((m) => m.type === "CSResume")) throw new Error("an expired token was sent");
      if ((await kept()) !== null) throw new Error("still kept");
      if (errors.length) throw new Error(errors.join("\n"));
    });
    await ap.close();
    guest.socket.destroy(); // its room goes with it

    await check("accounts: axe-core with the account panel (logged out and logged in) at 1280×800 and 390×844" + (SHOTS ? "; screenshots" : ""), async () => {
      // A populated page, as in the README: a logged-in member in a room of hers that
      // two TCP members share, with its earlier chats, another room of hers, empty.
      const p = await accounts.newPage();
      p.setDefaultTimeout(TIMEOUT);
      const errors = [];
      p.on("console", (m) => m.type() === "error" && errors.push("console: " + m.text()));
      p.on("pageerror", (e) => errors.push("page error: " + e));
      const audit = async (label) => {
        const found = await p.evaluate(async () => (await window.axe.run(document)).violations
          .filter((v) => v.impact === "serious" || v.impact === "critical")
          .map((v) => v.id + ": " + v.nodes.map((n) => n.target.join(" ")).join(", ")));
        if (found.length) throw new Error(label + ": " + found.join("; "));
      };
      const bothWidths = async (label) => {
        await p.setViewportSize({ width: 1280, height: 800 });
        await audit(label + ", 1280×800");
        await p.setViewportSize({ width: 390, height: 844 });
        await p.locator("#rooms-toggle[aria-expanded=false]").waitFor();
        await p.locator("#rooms-toggle").click();
        await p.locator("#account").waitFor();
        await audit(label + ", 390×844");
        await p.setViewportSize({ width: 1280, height: 800 });
        await p.locator("#rooms-toggle").waitFor({ state: "hidden" });
      };
      const say = async (line) => {
        await p.locator("#input").fill(line);
        await p.locator("#input").press("Enter");
      };
      await p.setViewportSize({ width: 1280, height: 800 });
      await p.goto(`http://${store.web}/`);
      await p.locator("#state.open").waitFor();
      await p.addScriptTag({ path: AXE });
      await p.locator("#name-input").fill("민지");
      await p.locator("#name-form button").click();
      await p.locator("#me-name", { hasText: "민지" }).waitFor();
      await p.locator("#register-details summary").click();
      await p.locator("#register-password").fill("민지의-비밀번호-2024");
      await p.locator("#login-form").waitFor();
      await bothWidths("logged out");
      await p.locator("#register-form button[type=submit]").click();
      await p.locator("#me-account").waitFor();
      await say("/create 주말 계획");
      await p.locator("#me-room", { hasText: "[주말 계획]" }).waitFor();
      // The panel's form leaves the room first (a typed /create would be refused in one).
      await p.locator("#create-title").fill("스터디 모임");
      await p.locator("#create-form button").click();
      await p.locator("#me-room", { hasText: "[스터디 모임]" }).waitFor();
      await p.locator("#rooms li", { hasText: "[3] 주말 계획" }).locator(".members", { hasText: "(비어 있음)" }).waitFor();
      const jun = new TcpClient(store.chat);
      const seo = new TcpClient(store.chat);
      guests.push(jun, seo);
      await Promise.all([jun.ready, seo.ready]);
      jun.send({ type: "CSName", name: "준호" });
      jun.send({ type: "CSJoinRoom", roomId: 4 });
      seo.send({ type: "CSName", name: "서연" });
      seo.send({ type: "CSJoinRoom", roomId: 4 });
      await seo.next((m) => m.type === "SCSystemMessage" && m.text === "방제[스터디 모임] 방에 입장했습니다.", "서연's entry");
      jun.send({ type: "CSChat", text: "오늘 스터디는 7시에 시작해요." });
      await p.locator("#log li.chat", { hasText: "7시에" }).waitFor();
      await say("좋아요, 자료는 제가 올릴게요!");
      await p.locator("#log li.chat.mine", { hasText: "자료는" }).waitFor();
      seo.send({ type: "CSChat", text: "저는 조금 늦을 것 같아요." });
      await p.locator("#log li.chat", { hasText: "늦을" }).waitFor();
      jun.send({ type: "CSChat", text: "괜찮아요, 천천히 오세요." });
      seo.send({ type: "CSChat", text: "3장까지 읽어 오면 되죠?" });
      await p.locator("#log li.chat", { hasText: "3장까지 읽어" }).waitFor();
      await say("네, 3장까지요. 질문은 미리 올려 주세요.");
      await p.locator("#log li.chat.mine", { hasText: "질문은" }).waitFor();
      // A reload: logged in again by the kept token, back in the room, its chats as 이전.
      await p.reload();
      await p.locator("#state.open").waitFor();
      await p.addScriptTag({ path: AXE });
      await p.locator("#me-room", { hasText: "[스터디 모임]" }).waitFor();
      await p.waitForFunction(() => document.querySelectorAll("#log li.history").length === 6);
      jun.send({ type: "CSChat", text: "네, 그럼 7시에 봬요." });
      await p.locator("#log li.chat", { hasText: "봬요" }).waitFor();
      await say("새로고침해도 로그인이 그대로네요.");
      await p.locator("#log li.chat.mine", { hasText: "그대로네요" }).waitFor();
      await p.locator("#rooms li", { hasText: "[4] 스터디 모임" }).locator(".mine").waitFor();
      await p.locator("#rooms li", { hasText: "[3] 주말 계획" }).locator(".mine").waitFor();
      await p.locator("#rooms li", { hasText: "[4] 스터디 모임" }).locator(".members", { hasText: "3명" }).waitFor();
      await bothWidths("logged in");
      await p.locator("#input").focus();
      if (SHOTS) await p.screenshot({ path: join(SHOTS, "web-desktop.png") });
      await p.setViewportSize({ width: 390, height: 844 });
      await p.locator("#rooms-toggle[aria-expanded=false]").waitFor();
      await p.locator("#input").focus();
      if (SHOTS) await p.screenshot({ path: join(SHOTS, "web-phone.png") });
      await audit("logged in, 390×844, panel closed");
      if (errors.length) throw new Error(errors.join("\n"));
    });
  } finally {
    guests.forEach((g) => g.socket.destroy());
    await accounts.close();
    await stopServer(store);
    rmSync(dataDir, { recursive: true, force: true });
  }

  // ---- moderation (PROTOCOL.md §7.6): an owner's page and a guest's, a store of their own
  // The owner (방장) registers and makes a room (so it is registered to her); the
  // guest (웹 손님: a name with a space, quoted in commands) enters it. A context each:
  // pages of one context share the remembered name and login; bypassCSP for axe.
  const modDir = mkdtempSync(join(tmpdir(), "chat-e2e-moderation-"));
  temporary.add(modDir);
  const modServer = await startServer(0, [`--data-dir=${modDir}`]);
  const ownerContext = await browser.newContext({ bypassCSP: true });
  const guestContext = await browser.newContext({ bypassCSP: true });
  try {
    const modErrors = [];
    const modPage = async (context) => {
      const p = await context.newPage();
      p.setDefaultTimeout(TIMEOUT);
      await p.addInitScript(recordSent);
      p.on("console", (m) => m.type() === "error" && modErrors.push("console: " + m.text()));
      p.on("pageerror", (e) => modErrors.push("page error: " + e));
      await p.goto(`http://${modServer.web}/`);
      await p.locator("#state.open").waitFor();
      return p;
    };
    const sayIn = async (p, line) => {
      await p.locator("#input").fill(line);
      await p.locator("#input").press("Enter");
    };
    const MODERATION = new Set(["CSOp", "CSOwner", "CSKick", "CSBan", "CSTopic"]);
    const moderationSent = async (p, from) => (await sentSince(p, from)).filter((m) => MODERATION.has(m.type));
    const same = (got, want) => {
      if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(JSON.stringify(got));
    };
    const TOPIC = "<b>3장</b>까지 읽어 오기";
    const KICKED = "[방장] 님이 나를 방에서 내보냈습니다.";
    const owner = await modPage(ownerContext);
    const guest = await modPage(guestContext);
    const guestRoom = guest.locator("#rooms li").filter({ has: guest.locator(".title", { hasText: "[1] 모임방" }) });
    const ownerRoom = owner.locator("#rooms li").filter({ has: owner.locator(".title", { hasText: "[1] 모임방" }) });
    // The header's topic as read: "주제 TEXT" ("" when hidden).
    const headerTopic = (p) => p.evaluate(() => {
      const el = document.getElementById("room-topic");
      return el.hidden ? "" : el.textContent;
    });
    const enter = async () => {
      await guestRoom.locator("button.room").click();
      await guest.locator("#me-room", { hasText: "[모임방]" }).waitFor();
    };

    await check("moderation: the owner's /topic is her room's — a page that enters shows it under the room in the header, as a line after the entry, and in the room list, all as text", async () => {
      await sayIn(owner, "/name 방장");
      await owner.locator("#me-name", { hasText: "방장" }).waitFor();
      await sayIn(owner, "/register 방장의-비밀번호-2024");
      await waitLine(owner, "system", "이름 방장 을 계정으로 등록했습니다. 이제 이 이름은 로그인해야 쓸 수 있습니다.");
      await sayIn(owner, "/create 모임방");
      await owner.locator("#log li.system", { hasText: "1번 방이 내 계정에 등록되었습니다." }).waitFor();
      const mark = await sentCount(owner);
      await sayIn(owner, "/topic   " + TOPIC + "  ");
      await waitLine(owner, "system", "주제를 바꿨습니다: " + TOPIC);
      same(await moderationSent(owner, mark), [{ type: "CSTopic", text: TOPIC }]);
      // The owner's own change: the server's answer is its line; the header shows it.
      await owner.waitForFunction(() => !document.getElementById("room-topic").hidden);
      if ((await headerTopic(owner)) !== "주제 " + TOPIC) throw new Error("owner's header: " + (await headerTopic(owner)));
      if ((await owner.locator("#log li.topic").count()) !== 0) throw new Error("the owner's change is shown twice");

      await sayIn(guest, "/name 웹 손님");
      await guest.locator("#me-name", { hasText: "웹 손님" }).waitFor();
      // In the list before entering: under the title, before the members.
      await guestRoom.locator(".topic", { hasText: "3장" }).waitFor();
      same(await guestRoom.locator("button.room > span:not([hidden])").evaluateAll((els) => els.map((e) => [e.className, e.textContent])),
        [["title", "[1] 모임방"], ["topic", "주제: " + TOPIC], ["members", "1명: 방장"]]);
      await enter();
      await waitLine(guest, "topic", "주제: " + TOPIC);
      const before = await guest.evaluate(() => document.querySelector("#log li.topic").previousElementSibling.textContent);
      if (!before.endsWith("방제[모임방] 방에 입장했습니다.")) throw new Error("before the topic: " + before);
      await guest.waitForFunction(() => !document.getElementById("room-topic").hidden);
      if ((await headerTopic(guest)) !== "주제 " + TOPIC) throw new Error("header: " + (await headerTopic(guest)));
      // Under the room: below the name and the room, inside the header.
      const [whoami, topic] = await guest.evaluate(() => ["whoami", "room-topic"].map((id) => document.getElementById(id).getBoundingClientRect().toJSON()));
      if (topic.top < whoami.bottom - 1) throw new Error("the topic is not under the room: " + JSON.stringify([whoami, topic]));
      if ((await guest.locator("#room-topic").getAttribute("title")) !== TOPIC) throw new Error("title");
      if ((await guest.locator("b").count()) !== 0) throw new Error("the topic was injected as HTML");

      // A change: a line naming who, the header and the list follow.
      await sayIn(owner, "/topic 오늘은 4장");
      await waitLine(guest, "topic", "방장 님이 주제를 바꿨습니다: 오늘은 4장");
      await guest.waitForFunction(() => document.getElementById("room-topic-text").textContent === "오늘은 4장");
      await guestRoom.locator(".topic", { hasText: "주제: 오늘은 4장" }).waitFor();
      await ownerRoom.locator(".topic", { hasText: "주제: 오늘은 4장" }).waitFor();
      // A guest may not.
      await sayIn(guest, "/topic 내 마음대로");
      await waitLine(guest, "system", "방장이나 운영자만 할 수 있습니다.");
      if ((await headerTopic(guest)) !== "주제 오늘은 4장") throw new Error("header: " + (await headerTopic(guest)));
    });

    await check("moderation: the owner kicks the guest (a quoted name, a reason): its page shows the kick line and no current room, having sent nothing", async () => {
      const guestMark = await sentCount(guest);
      const ownerMark = await sentCount(owner);
      await sayIn(owner, '/kick "웹 손님"   자리 비움 ');
      await waitLine(guest, "system", KICKED + " 이유: 자리 비움");
      await guest.locator("#me-room", { hasText: "방 밖" }).waitFor();
      if ((await guest.locator('#rooms button[aria-current="true"]').count()) !== 0) throw new Error("a room is still marked current");
      if ((await guestRoom.locator(".here").isVisible())) throw new Error("현재 방 is still shown");
      if ((await headerTopic(guest)) !== "") throw new Error("the topic is still shown: " + (await headerTopic(guest)));
      if (!(await guest.locator("#leave").isDisabled())) throw new Error("방 나가기 is still enabled");
      if ((await guest.evaluate(() => localStorage.getItem("chat.room"))) !== null) throw new Error("the room is still remembered");
      same(await sentSince(guest, guestMark), []);
      await waitLine(owner, "system", "[웹 손님] 님이 [방장] 님에 의해 방에서 내보내졌습니다. 이유: 자리 비움");
      same(await moderationSent(owner, ownerMark), [{ type: "CSKick", name: "웹 손님", reason: "자리 비움" }]);
      await guestRoom.locator(".members", { hasText: "1명: 방장" }).waitFor();
      // The server agrees: a chat now is refused, not shown as sent.
      await sayIn(guest, "아직 여기 있나요?");
      await guest.waitForFunction((t) => [...document.querySelectorAll("#log li.system")].filter((li) => li.lastChild.data === t).length >= 1, "현재 대화방에 들어가 있지 않습니다.");
      if ((await guest.locator("#log li.chat", { hasText: "아직 여기" }).count()) !== 0) throw new Error("shown as sent");
      // Back in by a click; the topic is told again.
      await enter();
      await guest.waitForFunction(() => document.querySelectorAll("#log li.topic").length === 3);
      await waitLine(guest, "topic", "주제: 오늘은 4장");
      if ((await headerTopic(guest)) !== "주제 오늘은 4장") throw new Error("header: " + (await headerTopic(guest)));
    });

    await check("moderation: /ban kicks the guest and keeps it out until /unban; /op, /deop, /owner with the server's refusals; usage lines send nothing", async () => {
      const mark = await sentCount(owner);
      await sayIn(owner, '/ban "웹 손님" 30');
      await waitLine(owner, "system", "웹 손님 님을 30분 동안 이 방에서 밴했습니다.");
      await waitLine(guest, "system", KICKED); // a ban kicks, without a reason
      await guest.locator("#me-room", { hasText: "방 밖" }).waitFor();
      await guestRoom.locator("button.room").click();
      await waitLine(guest, "system", "이 방에서 밴되어 들어갈 수 없습니다. 30분 뒤에 풀립니다.");
      if ((await guest.locator("#me-room").textContent()) !== "방 밖") throw new Error("entered");
      await sayIn(owner, '/unban "웹 손님"');
      await waitLine(owner, "system", "웹 손님 님의 밴을 풀었습니다.");
      await sayIn(owner, "/unban 웹 손님");
      await waitLine(owner, "system", "밴되지 않은 이름입니다.");
      await sayIn(owner, '/op "웹 손님"');
      await waitLine(owner, "system", "그런 이름의 계정이 없습니다.");
      await sayIn(owner, "/deop 방장");
      await waitLine(owner, "system", "자기 자신에게는 할 수 없습니다.");
      await sayIn(owner, "/owner 없는계정");
      await owner.waitForFunction((t) => [...document.querySelectorAll("#log li.system")].filter((li) => li.lastChild.data === t).length === 2, "그런 이름의 계정이 없습니다.");
      await sayIn(owner, "/ban 웹 0");
      await waitLine(owner, "system", "밴 시간은 1분부터 525600분까지 쓸 수 있습니다. 쓰지 않으면 풀 때까지입니다.");
      same(await moderationSent(owner, mark), [
        { type: "CSBan", name: "웹 손님", minutes: 30, ban: true },
        { type: "CSBan", name: "웹 손님", ban: false },
        { type: "CSBan", name: "웹 손님", ban: false },
        { type: "CSOp", name: "웹 손님", op: true },
        { type: "CSOp", name: "방장", op: false },
        { type: "CSOwner", name: "없는계정" },
        { type: "CSBan", name: "웹", minutes: 0, ban: true },
      ]);
      const before = await sentCount(owner);
      for (const [line, usage] of [["/kick", "/kick 이름 [이유]"], ["/ban 웹 영원히", "/ban 이름 [분]"], ["/ban", "/ban 이름 [분]"],
        ["/op", "/op 이름"], ["/deop  ", "/deop 이름"], ["/owner", "/owner 이름"], ["/unban", "/unban 이름"]]) {
        await sayIn(owner, line);
        await waitLine(owner, "local", "사용법: " + usage);
      }
      same(await moderationSent(owner, before), []);
      await sayIn(guest, "/help");
      await waitLine(guest, "local", "/kick 이름 [이유] — 그 사람을 방에서 내보냅니다 (방장과 운영자).");
      await waitLine(guest, "local", "/topic [주제] — 방 주제를 정합니다; 주제 없이 쓰면 지웁니다 (방장과 운영자, 200자까지).");
      // Unbanned: in again.
      await enter();
      await guest.waitForFunction(() => document.querySelectorAll("#log li.topic").length === 4);
    });

    await check("moderation: axe-core with a long topic in the header and the list and kick lines in the log, light and dark, 1280×800 and 390×844", async () => {
      const long = "다음 모임까지 3장과 4장을 읽고, 질문을 두 개씩 준비해 오세요. 발표 순서는 지난번과 같고 자료는 공유 폴더에 있습니다. 늦으면 미리 말해 주세요!";
      await sayIn(owner, "/topic " + long);
      await waitLine(guest, "topic", "방장 님이 주제를 바꿨습니다: " + long);
      await guestRoom.locator(".topic", { hasText: "발표 순서는" }).waitFor();
      await guest.addScriptTag({ path: AXE });
      await guest.setViewportSize({ width: 1280, height: 800 });
      await axeAudit(guest, "light, 1280×800");
      await guest.emulateMedia({ colorScheme: "dark" });
      await axeAudit(guest, "dark, 1280×800");
      await guest.setViewportSize({ width: 390, height: 844 });
      await guest.locator("#rooms-toggle[aria-expanded=false]").waitFor();
      await guest.locator("#rooms-toggle").click();
      await guestRoom.locator(".topic").waitFor();
      await axeAudit(guest, "dark, 390×844");
      await guest.emulateMedia({ colorScheme: "light" });
      await axeAudit(guest, "light, 390×844");
      // The phone layout: nothing wider than the screen; the header's topic and the
      // list's at most two lines each, the input still there.
      const fits = await guest.evaluate(() => {
        const header = document.getElementById("room-topic");
        const listed = document.querySelector("#rooms .topic:not([hidden])");
        return {
          width: document.documentElement.scrollWidth,
          header: header.getBoundingClientRect().right <= innerWidth && header.offsetHeight <= 2.2 * parseFloat(getComputedStyle(header).fontSize) * 1.6,
          listed: listed.offsetHeight <= 2 * parseFloat(getComputedStyle(listed).fontSize) * 1.6,
          input: document.getElementById("input").getBoundingClientRect().bottom <= innerHeight,
        };
      });
      if (fits.width > 390 || !fits.header || !fits.listed || !fits.input) throw new Error(JSON.stringify(fits));
      await guest.locator("#rooms-toggle").click();
      await guest.setViewportSize({ width: 1280, height: 800 });
      if (modErrors.length) throw new Error(modErrors.join("\n"));
    });

    await check("moderation: /topic alone clears it (header and list follow); /owner hands the room on, 내 방 moving with it", async () => {
      const mark = await sentCount(owner);
      await sayIn(owner, "/topic");
      await waitLine(owner, "system", "주제를 지웠습니다.");
      await waitLine(guest, "topic", "방장 님이 주제를 지웠습니다.");
      await guest.locator("#room-topic").waitFor({ state: "hidden" });
      await guestRoom.locator(".topic").waitFor({ state: "hidden" });
      await owner.locator("#room-topic").waitFor({ state: "hidden" });
      same(await moderationSent(owner, mark), [{ type: "CSTopic", text: "" }]);
      // The guest registers its name; the owner hands the room to it.
      await sayIn(guest, "/register 손님의-비밀번호-2024");
      await waitLine(guest, "system", "이름 웹 손님 을 계정으로 등록했습니다. 이제 이 이름은 로그인해야 쓸 수 있습니다.");
      await ownerRoom.locator(".mine").waitFor();
      // In again as the account (the room knows a member by the login it entered with).
      await guest.locator("#leave").click();
      await guest.locator("#me-room", { hasText: "방 밖" }).waitFor();
      await enter();
      await sayIn(owner, '/owner "웹 손님"');
      await waitLine(owner, "system", "이제 웹 손님 님이 이 방의 방장입니다.");
      await waitLine(guest, "system", "이제 웹 손님 님이 이 방의 방장입니다.");
      await ownerRoom.locator(".mine").waitFor({ state: "hidden" });
      await guestRoom.locator(".mine").waitFor();
      // The new owner may set the topic; the old one is an operator now.
      await sayIn(guest, "/topic 새 방장의 주제");
      await waitLine(guest, "system", "주제를 바꿨습니다: 새 방장의 주제");
      await waitLine(owner, "topic", "웹 손님 님이 주제를 바꿨습니다: 새 방장의 주제");
      await sayIn(owner, '/kick "웹 손님"');
      await waitLine(owner, "system", "방장은 내보내거나 밴할 수 없습니다.");
      if (modErrors.length) throw new Error(modErrors.join("\n"));
    });

    await check("moderation: where the server does not offer it, the commands say so and send nothing", async () => {
      const p = await guestContext.newPage();
      p.setDefaultTimeout(TIMEOUT);
      await p.addInitScript(recordSent);
      await p.addInitScript(hideFeature, "moderation");
      await p.goto(`http://${modServer.web}/`);
      await p.locator("#state.open").waitFor();
      for (const line of ["/topic 안녕", "/kick 누구", "/ban 누구 5", "/unban 누구", "/op 누구", "/deop 누구", "/owner 누구"]) await sayIn(p, line);
      await p.waitForFunction(() => [...document.querySelectorAll("#log li.local")].filter((li) => li.lastChild.data === "이 서버에서는 방 관리 기능을 쓸 수 없습니다.").length === 7);
      await sayIn(p, "/help");
      await waitLine(p, "local", "이 서버에서는 방 관리 명령어(/op, /deop, /owner, /kick, /ban, /unban, /topic)를 쓸 수 없습니다.");
      same(await moderationSent(p, 0), []);
      await p.close();
    });
  } finally {
    await ownerContext.close();
    await guestContext.close();
    await stopServer(modServer);
    rmSync(modDir, { recursive: true, force: true });
  }
} finally {
  await browser.close();
  await stopServer(server);
}
console.log(`all ${checks.length} checks passed`);
