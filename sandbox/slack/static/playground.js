// The playground page: draws the local Slack's channel the way Slack draws Block Kit and
// sends what the chosen user does back as signed Slack requests (through /playground/act).
"use strict";

(() => {
  const POLL_MS = 500;
  const SUGGEST_DEBOUNCE_MS = 200;

  const ui = {
    user: null,
    channel: null,
    state: null,
    stateText: "",
    threadTs: null,
    seen: new Map(), // message key -> signature, to flash messages edited in place
    modal: null, // {id, hash, values, errors, banner}
    home: false, // the app's Home tab is shown instead of the channel
  };

  const $ = (selector) => document.querySelector(selector);

  // -- DOM helpers ------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "html") node.innerHTML = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function escapeHtml(text) {
    return String(text)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;");
  }

  function decodeSlack(text) {
    return String(text).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  }

  // -- names and times -------------------------------------------------------------------

  function userInfo(id) {
    const users = (ui.state && ui.state.users) || {};
    return users[id] || { name: id.toLowerCase(), real_name: id, is_bot: false };
  }

  function displayName(id) {
    const user = userInfo(id);
    return user.real_name || user.name || id;
  }

  function channelName(id) {
    const found = ((ui.state && ui.state.channels) || []).find((c) => c.id === id);
    return found ? found.name : id.toLowerCase();
  }

  const MIC = '<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><path fill="#fff" d="M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3Zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.92V21h2v-3.08A7 7 0 0 0 19 11h-2Z"/></svg>';
  const AVATAR_COLORS = ["#2bac76", "#e8912d", "#1264a3", "#9b51e0", "#cd2553", "#0f7b6c"];

  function avatar(id) {
    const user = userInfo(id);
    if (user.is_bot) return h("div", { class: "avatar bot", html: MIC });
    let hash = 0;
    for (const ch of id) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
    const initial = (user.real_name || user.name || "?").trim().charAt(0).toUpperCase();
    const color = AVATAR_COLORS[hash % AVATAR_COLORS.length];
    return h("div", { class: "avatar", style: `background:${color}` }, initial);
  }

  function clock(ts) {
    const when = new Date(parseFloat(ts) * 1000);
    return when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function slackDate(seconds, format, fallback) {
    const when = new Date(seconds * 1000);
    if (Number.isNaN(when.getTime())) return fallback;
    const today = new Date();
    const yesterday = new Date(today.getTime() - 86400000);
    const sameDay = (a, b) => a.toDateString() === b.toDateString();
    const pretty = sameDay(when, today) ? "Today" : sameDay(when, yesterday) ? "Yesterday" : null;
    const short = when.toLocaleDateString([], { month: "short", day: "numeric" });
    const long = when.toLocaleDateString([], {
      weekday: "long", month: "long", day: "numeric", year: "numeric",
    });
    const words = {
      date_num: when.toISOString().slice(0, 10),
      date: when.toLocaleDateString([], { month: "long", day: "numeric", year: "numeric" }),
      date_short: short,
      date_long: long,
      date_pretty: pretty || long,
      date_short_pretty: pretty || short,
      date_long_pretty: pretty || long,
      time: when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
      time_secs: when.toLocaleTimeString(),
    };
    return format.replace(/\{(\w+)\}/g, (all, key) => words[key] || all);
  }

  // -- mrkdwn ----------------------------------------------------------------------------

  const EMOJI = {
    x: "❌", white_check_mark: "✅", heavy_check_mark: "✔️", tada: "🎉", no_entry: "⛔",
    no_entry_sign: "🚫", mag: "🔍", information_source: "ℹ️", inbox_tray: "📥",
    hourglass_flowing_sand: "⏳", hourglass: "⌛", grey_question: "❔", question: "❓",
    arrows_counterclockwise: "🔄", alarm_clock: "⏰", warning: "⚠️", rocket: "🚀",
    lock: "🔒", key: "🔑", bust_in_silhouette: "👤", busts_in_silhouette: "👥",
    thumbsup: "👍", "+1": "👍", thumbsdown: "👎", eyes: "👀", clipboard: "📋", memo: "📝",
    microphone: "🎤", studio_microphone: "🎙️", speech_balloon: "💬", robot_face: "🤖",
    red_circle: "🔴", large_green_circle: "🟢", large_yellow_circle: "🟡", construction: "🚧",
    gear: "⚙️", link: "🔗", bell: "🔔", star: "⭐", fire: "🔥", sparkles: "✨",
    stopwatch: "⏱️", calendar: "📅", shield: "🛡️", exclamation: "❗", bulb: "💡",
    point_right: "👉", arrow_right: "➡️", repeat: "🔁", wave: "👋", pencil2: "✏️",
    hammer_and_wrench: "🛠️", package: "📦", page_facing_up: "📄", paperclip: "📎",
    heavy_plus_sign: "➕", heavy_minus_sign: "➖", zap: "⚡", sos: "🆘", stop_sign: "🛑",
    arrow_forward: "▶️", pause_button: "⏸️", checkered_flag: "🏁", trophy: "🏆",
  };

  function emojify(escaped) {
    return escaped.replace(/:([a-z0-9_+\-]+):/g, (all, name) =>
      EMOJI[name] ? `<span class="emoji" title=":${name}:">${EMOJI[name]}</span>` : all);
  }

  function safeHref(url) {
    return /^(https?:|mailto:)/i.test(url) ? url : null;
  }

  function renderToken(inner) {
    const bar = inner.indexOf("|");
    const head = bar >= 0 ? inner.slice(0, bar) : inner;
    const label = bar >= 0 ? inner.slice(bar + 1) : null;
    if (head.startsWith("@")) {
      const id = head.slice(1);
      const me = id === ui.user ? " me" : "";
      const name = label || displayName(id);
      return `<span class="mention${me}" data-user="${escapeHtml(id)}">@${escapeHtml(name)}</span>`;
    }
    if (head.startsWith("#")) {
      const name = label || channelName(head.slice(1));
      return `<span class="mention">#${escapeHtml(name)}</span>`;
    }
    if (head.startsWith("!date^")) {
      const [, seconds, format] = head.split("^");
      const fallback = label ? decodeSlack(label) : "";
      return escapeHtml(slackDate(parseInt(seconds, 10), format || "{date}", fallback));
    }
    if (head.startsWith("!subteam^")) {
      return `<span class="mention">@${escapeHtml(label || "group")}</span>`;
    }
    if (head.startsWith("!")) {
      return `<span class="mention">@${escapeHtml(label || head.slice(1))}</span>`;
    }
    const url = decodeSlack(head);
    const href = safeHref(url);
    const text = escapeHtml(label !== null ? decodeSlack(label) : url);
    if (!href) return text;
    const permalink = url.match(/\/archives\/([A-Z0-9]+)\/p(\d{10})(\d{6})/);
    const extra = permalink
      ? ` data-permalink-channel="${permalink[1]}" data-permalink-ts="${permalink[2]}.${permalink[3]}"`
      : "";
    return `<a href="${escapeHtml(href)}" target="_blank" rel="noopener noreferrer"${extra}>${text}</a>`;
  }

  function inlineFormat(escaped) {
    return escaped
      .replace(/(^|[^\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])/g, "$1<b>$2</b>")
      .replace(/(^|[^\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])/g, "$1<i>$2</i>")
      .replace(/(^|[^\w~])~(?=\S)([^~\n]*?\S)~(?![\w~])/g, "$1<s>$2</s>");
  }

  function mrkdwn(source) {
    const held = [];
    const hold = (html) => `\u0001${held.push(html) - 1}\u0002`;
    let text = String(source || "");
    text = text.replace(/```([\s\S]*?)```/g, (all, body) =>
      hold(`<pre>${escapeHtml(decodeSlack(body.replace(/^\n/, "")))}</pre>`));
    text = text.replace(/`([^`\n]+)`/g, (all, body) =>
      hold(`<code>${escapeHtml(decodeSlack(body))}</code>`));
    text = text.replace(/<([^<>\n]+)>/g, (all, inner) => hold(renderToken(inner)));
    const lines = text.split("\n").map((line) => emojify(inlineFormat(escapeHtml(decodeSlack(line)))));
    const out = [];
    let quote = [];
    const flushQuote = () => {
      if (quote.length) out.push(`<blockquote>${quote.join("<br>")}</blockquote>`);
      quote = [];
    };
    lines.forEach((line, index) => {
      const quoted = line.match(/^&gt;\s?(.*)$/);
      if (quoted) { quote.push(quoted[1]); return; }
      flushQuote();
      const item = line.match(/^(\s*)(•|◦|▪|-|\d+\.)\s+(.*)$/);
      if (item) {
        const mark = item[2] === "-" ? "•" : item[2];
        out.push(`<div class="li" style="padding-left:${4 + item[1].length * 10}px">` +
          `<span class="li-mark">${mark}</span><span>${item[3]}</span></div>`);
        return;
      }
      const next = index < lines.length - 1 ? "<br>" : "";
      out.push(line + next);
    });
    flushQuote();
    let html = out.join("").replace(/<br>(<div class="li"|<blockquote>)/g, "$1");
    // Held pieces may hold others (a link inside a code span is not formatted, by design).
    for (let pass = 0; pass < 3 && html.includes("\u0001"); pass += 1) {
      html = html.replace(/\u0001(\d+)\u0002/g, (all, n) => held[Number(n)]);
    }
    return html;
  }

  function plainHtml(text, emoji) {
    const escaped = escapeHtml(text || "");
    return emoji === false ? escaped : emojify(escaped);
  }

  function textHtml(obj) {
    if (!obj) return "";
    if (typeof obj === "string") return plainHtml(obj);
    // Slack breaks plain_text at its newlines, as it does mrkdwn.
    if (obj.type !== "mrkdwn") return plainHtml(obj.text, obj.emoji).replace(/\n/g, "<br>");
    return mrkdwn(obj.text);
  }

  function textNode(obj, tag = "div", cls = "mrkdwn") {
    return h(tag, { class: cls, html: textHtml(obj) });
  }

  function plainText(obj) {
    if (!obj) return "";
    return typeof obj === "string" ? obj : decodeSlack(obj.text || "");
  }

  // -- Block Kit -------------------------------------------------------------------------

  // Only images served by this machine load: the playground sends nothing elsewhere.
  function isLocal(url) {
    if (/^data:image\//.test(url)) return true;
    try {
      return new URL(url, window.location.href).origin === window.location.origin;
    } catch (error) {
      return false;
    }
  }

  function image(url, alt, cls) {
    const fallback = () => {
      const box = h("span", { class: "img-missing", title: url || "" }, alt || "image");
      const href = url && safeHref(url);
      return href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, box) : box;
    };
    if (!url || !isLocal(url)) return fallback();
    const img = h("img", { src: url, alt: alt || "", class: cls, loading: "lazy" });
    img.addEventListener("error", () => img.replaceWith(fallback()));
    return img;
  }

  function buttonClass(style) {
    if (style === "primary") return "btn btn-primary";
    if (style === "danger") return "btn btn-danger";
    return "btn";
  }

  function renderElement(element, blockId, ctx) {
    const type = element.type;
    if (type === "button") {
      const attrs = {
        class: buttonClass(element.style) + " btn-small",
        type: "button",
        dataset: { actionId: element.action_id || "", blockId },
        "data-testid": `button-${element.action_id}`,
      };
      if (element.url) attrs.title = element.url;
      const button = h("button", attrs, h("span", { html: plainHtml(plainText(element.text)) }));
      button.addEventListener("click", async () => {
        if (element.url) window.open(element.url, "_blank", "noopener");
        if (element.confirm && !(await confirmDialog(element.confirm))) return;
        button.disabled = true;
        try {
          await ctx.act(element, blockId, element.value);
        } finally {
          button.disabled = false;
        }
      });
      return button;
    }
    if (type === "static_select" || type === "overflow") {
      const options = element.options || [];
      const placeholder = type === "overflow" ? "⋯" : plainText(element.placeholder) || "Select";
      const select = h("select", { class: "select", dataset: { actionId: element.action_id } },
        h("option", { value: "" }, placeholder),
        options.map((o) => h("option", { value: o.value }, plainText(o.text))));
      if (element.initial_option) select.value = element.initial_option.value;
      select.addEventListener("change", () => {
        if (select.value) ctx.act(element, blockId, select.value);
      });
      return h("div", { style: "min-width:200px" }, select);
    }
    if (type === "image") return image(element.image_url, element.alt_text);
    return h("span", { class: "b-unknown" }, `[${type}]`);
  }

  function renderBlock(block, ctx) {
    const blockId = block.block_id || "";
    switch (block.type) {
      case "header":
        return h("div", { class: "b-header", html: plainHtml(plainText(block.text)) });
      case "section": {
        const main = h("div", { class: "b-section-main" });
        if (block.text) main.append(textNode(block.text));
        if (block.fields && block.fields.length) {
          main.append(h("div", { class: "b-fields" }, block.fields.map((f) => textNode(f))));
        }
        const row = h("div", { class: "b-section", dataset: { blockId } }, main);
        if (block.accessory) {
          const acc = block.accessory;
          row.append(acc.type === "image"
            ? image(acc.image_url, acc.alt_text, "accessory-image")
            : renderElement(acc, blockId, ctx));
        }
        return row;
      }
      case "context":
        return h("div", { class: "b-context", dataset: { blockId } }, (block.elements || []).map(
          (e) => (e.type === "image" ? image(e.image_url, e.alt_text) : textNode(e, "span"))));
      case "divider":
        return h("hr", { class: "b-divider" });
      case "image":
        return h("div", { class: "b-image" }, h("figure", {},
          block.title ? h("div", { class: "title", html: textHtml(block.title) }) : null,
          image(block.image_url, block.alt_text)));
      case "actions":
        return h("div", { class: "b-actions", dataset: { blockId } },
          (block.elements || []).map((e) => renderElement(e, blockId, ctx)));
      case "rich_text":
        return h("div", { class: "mrkdwn", html: richText(block) });
      case "input":
        return renderInputBlock(block, ctx);
      default:
        return h("div", { class: "b-unknown" }, `[${block.type} block]`);
    }
  }

  function richText(block) {
    const inline = (e) => {
      if (e.type === "text") {
        let html = escapeHtml(e.text).replace(/\n/g, "<br>");
        const s = e.style || {};
        if (s.code) html = `<code>${html}</code>`;
        if (s.bold) html = `<b>${html}</b>`;
        if (s.italic) html = `<i>${html}</i>`;
        if (s.strike) html = `<s>${html}</s>`;
        return html;
      }
      if (e.type === "link") return renderToken(`${e.url}|${escapeHtml(e.text || e.url)}`);
      if (e.type === "user") return renderToken(`@${e.user_id}`);
      if (e.type === "channel") return renderToken(`#${e.channel_id}`);
      if (e.type === "emoji") return EMOJI[e.name] || `:${e.name}:`;
      return "";
    };
    return (block.elements || []).map((part) => {
      const inner = (part.elements || []).map((e) =>
        e.type === "rich_text_section" ? (e.elements || []).map(inline).join("") : inline(e));
      if (part.type === "rich_text_list") {
        return inner.map((html) => `<div class="li"><span class="li-mark">•</span><span>${html}</span></div>`).join("");
      }
      if (part.type === "rich_text_preformatted") return `<pre>${inner.join("")}</pre>`;
      if (part.type === "rich_text_quote") return `<blockquote>${inner.join("")}</blockquote>`;
      return inner.join("");
    }).join("");
  }

  function renderBlocks(blocks, ctx) {
    return h("div", { class: "blocks" }, (blocks || []).map((b) => renderBlock(b, ctx)));
  }

  // -- messages ---------------------------------------------------------------------------

  const EYE = '<svg viewBox="0 0 20 20" aria-hidden="true"><path d="M10 4C5.5 4 2.2 7.1 1 10c1.2 2.9 4.5 6 9 6s7.8-3.1 9-6c-1.2-2.9-4.5-6-9-6Zm0 10a4 4 0 1 1 0-8 4 4 0 0 1 0 8Zm0-6a2 2 0 1 0 0 4 2 2 0 0 0 0-4Z"/></svg>';

  function messageContext(message) {
    return {
      act: (element, blockId, value) => act({
        kind: "action",
        user: ui.user,
        channel: ui.channel,
        ts: message.ts,
        action_id: element.action_id,
        block_id: blockId || null,
        value: value === undefined ? null : value,
      }),
    };
  }

  function renderMessage(message, { inThread }) {
    const ctx = messageContext(message);
    const author = message.via === "slack" ? "Slackbot" : displayName(message.user);
    const isBot = userInfo(message.user).is_bot;
    const head = h("div", { class: "msg-head" },
      h("span", { class: "msg-name" }, author),
      isBot ? h("span", { class: "app-badge" }, "APP") : null,
      h("span", { class: "msg-time", title: message.ts }, clock(message.ts)),
      message.edited ? h("span", { class: "edited", title: `edited ${message.edited}×` }, "(edited)") : null);
    const body = h("div", { class: "msg-body" }, head);
    if (message.blocks && message.blocks.length) body.append(renderBlocks(message.blocks, ctx));
    else body.append(h("div", { class: "mrkdwn", html: mrkdwn(message.text) }));
    for (const att of message.attachments || []) {
      const bar = h("div", { class: "attachment", style: `border-left-color:${att.color ? (att.color.startsWith("#") ? att.color : "#" + att.color) : "#ddd"}` });
      if (att.blocks) bar.append(renderBlocks(att.blocks, ctx));
      else bar.append(h("div", { class: "mrkdwn", html: mrkdwn(att.text || att.fallback || "") }));
      body.append(bar);
    }
    if (message.ephemeral) {
      body.append(h("div", { class: "ephemeral-note", html: `${EYE}<span>Only visible to you</span>` }));
    }
    const replies = message.replies || [];
    if (!inThread && replies.length) {
      const last = replies[replies.length - 1];
      const faces = h("span", { style: "display:inline-flex;gap:2px" },
        [...new Set(replies.map((r) => r.user))].slice(0, 3).map((id) => {
          const a = avatar(id);
          a.style.width = a.style.height = "22px";
          a.style.fontSize = "11px";
          a.style.borderRadius = "4px";
          return a;
        }));
      body.append(h("button", {
        class: "thread-link",
        type: "button",
        "data-testid": "open-thread",
        onclick: () => openThread(message.ts),
      }, faces, `${replies.length} ${replies.length === 1 ? "reply" : "replies"}`,
      h("span", { class: "last" }, `Last reply ${clock(last.ts)}`)));
    }
    const classes = ["msg"];
    if (message.ephemeral) classes.push("ephemeral");
    if (!inThread && ui.threadTs === message.ts) classes.push("open-thread");
    return h("div", {
      class: classes.join(" "),
      dataset: { ts: message.ts, ephemeral: message.ephemeral ? "1" : "0" },
    }, avatar(message.user), body);
  }

  function signature(message, inThread) {
    const replies = inThread ? [] : (message.replies || []).map((r) => r.ts);
    return JSON.stringify([message.text, message.blocks, message.edited, replies,
      !inThread && ui.threadTs === message.ts, ui.user]);
  }

  // Keep nodes whose message did not change, so scrolling, focus and hover stay put.
  function reconcile(container, messages, inThread, scope) {
    const atBottom = container.scrollHeight - container.scrollTop - container.clientHeight < 40;
    const existing = new Map();
    for (const node of container.querySelectorAll(":scope > .msg")) existing.set(node.dataset.key, node);
    const wanted = [];
    for (const message of messages) {
      const key = `${scope}:${message.ts}`;
      const sig = signature(message, inThread);
      let node = existing.get(key);
      if (!node || node.dataset.sig !== sig) {
        const fresh = renderMessage(message, { inThread });
        fresh.dataset.key = key;
        fresh.dataset.sig = sig;
        const before = ui.seen.get(key);
        if (before !== undefined && before.edited !== message.edited) fresh.classList.add("flash");
        ui.seen.set(key, { edited: message.edited });
        if (node) node.replaceWith(fresh);
        node = fresh;
      } else if (!ui.seen.has(key)) {
        ui.seen.set(key, { edited: message.edited });
      }
      wanted.push(node);
      existing.delete(key);
    }
    for (const node of existing.values()) node.remove();
    container.querySelectorAll(":scope > :not(.msg)").forEach((n) => n.remove());
    wanted.forEach((node, index) => {
      if (container.children[index] !== node) container.insertBefore(node, container.children[index] || null);
    });
    if (atBottom) container.scrollTop = container.scrollHeight;
  }

  function homeContext() {
    return {
      act: (element, blockId, value) => act({
        kind: "home_action",
        user: ui.user,
        action_id: element.action_id,
        block_id: blockId || null,
        value: value === undefined ? null : value,
      }),
    };
  }

  function renderHome() {
    $("#home-pane").hidden = !ui.home;
    $("#channel-pane").hidden = ui.home;
    $("#home-link").classList.toggle("active", ui.home);
    if (!ui.home) return;
    const home = ui.state.home;
    const pane = $("#home-blocks");
    pane.replaceChildren(home
      ? renderBlocks(home.blocks, homeContext())
      : h("div", { class: "empty" }, "The app has not published a Home tab for you yet."));
  }

  async function openHome() {
    ui.home = true;
    closeThread();
    ui.stateText = "";
    await act({ kind: "home_open", user: ui.user });
  }

  function renderChannel() {
    const state = ui.state;
    const pane = $("#messages");
    const messages = state.messages || [];
    $("#channel-title").textContent = `# ${channelName(state.channel || "")}`;
    const count = messages.filter((m) => !m.ephemeral).length;
    $("#channel-sub").textContent = `${count} ${count === 1 ? "message" : "messages"}`;
    reconcile(pane, messages, false, "c");
    if (!messages.length && !pane.querySelector(".empty")) {
      pane.append(h("div", {
        class: "empty",
        html: "Nothing here yet. Pick who you are on the left, then type " +
          "<code>/voice help</code> or <code>/voice submit</code> below.",
      }));
    }
    renderThread();
  }

  function openThread(ts) {
    ui.threadTs = ts;
    $("#thread-pane").hidden = false;
    $("#thread-messages").replaceChildren();
    if (ui.state) renderChannel();
  }

  function closeThread() {
    ui.threadTs = null;
    $("#thread-pane").hidden = true;
    if (ui.state) renderChannel();
  }

  function renderThread() {
    if (!ui.threadTs) return;
    const parent = (ui.state.messages || []).find((m) => m.ts === ui.threadTs);
    const pane = $("#thread-messages");
    if (!parent) {
      pane.replaceChildren(h("div", { class: "empty" }, "This message is gone."));
      return;
    }
    $("#thread-sub").textContent = `# ${channelName(ui.state.channel)}`;
    const replies = parent.replies || [];
    reconcile(pane, [parent, ...replies], true, "t");
    const first = pane.querySelector(":scope > .msg");
    if (first) first.classList.add("thread-parent");
    if (replies.length) {
      const count = h("div", { class: "thread-count" },
        `${replies.length} ${replies.length === 1 ? "reply" : "replies"}`);
      first.after(count);
    }
  }

  // -- modals ----------------------------------------------------------------------------

  function optionEntry(option) {
    return option ? { text: option.text, value: option.value } : null;
  }

  function initialEntry(element) {
    const type = element.type;
    switch (type) {
      case "plain_text_input":
      case "number_input":
      case "email_text_input":
      case "url_text_input":
        return { type, value: element.initial_value ?? null };
      case "static_select":
      case "external_select":
      case "radio_buttons":
        return { type, selected_option: optionEntry(element.initial_option) };
      case "multi_static_select":
      case "multi_external_select":
      case "checkboxes":
        return { type, selected_options: (element.initial_options || []).map(optionEntry) };
      case "datepicker":
        return { type, selected_date: element.initial_date ?? null };
      case "timepicker":
        return { type, selected_time: element.initial_time ?? null };
      case "users_select":
        return { type, selected_user: element.initial_user ?? null };
      default:
        return null;
    }
  }

  function setValue(blockId, actionId, entry) {
    ui.modal.values[blockId] = ui.modal.values[blockId] || {};
    ui.modal.values[blockId][actionId] = entry;
  }

  function inputControl(element, blockId) {
    const type = element.type;
    const actionId = element.action_id;
    const entry = initialEntry(element);
    if (entry) setValue(blockId, actionId, entry);
    const placeholder = plainText(element.placeholder);
    const testid = `input-${blockId}`;
    if (type === "plain_text_input" || type.endsWith("_text_input") || type === "number_input") {
      const attrs = {
        class: "text-input",
        placeholder,
        maxlength: element.max_length,
        "data-testid": testid,
        id: `in-${blockId}`,
      };
      const field = element.multiline ? h("textarea", attrs) : h("input", { ...attrs, type: "text" });
      field.value = element.initial_value || "";
      field.addEventListener("input", () =>
        setValue(blockId, actionId, { type, value: field.value === "" ? null : field.value }));
      return field;
    }
    if (type === "static_select") {
      const options = element.options || [];
      const groups = element.option_groups || [];
      const all = [...options, ...groups.flatMap((g) => g.options || [])];
      const select = h("select", { class: "select", "data-testid": testid, id: `in-${blockId}` },
        h("option", { value: "" }, placeholder || "Select an option"),
        options.map((o) => h("option", { value: o.value }, plainText(o.text))),
        groups.map((g) => h("optgroup", { label: plainText(g.label) },
          (g.options || []).map((o) => h("option", { value: o.value }, plainText(o.text))))));
      if (element.initial_option) select.value = element.initial_option.value;
      select.addEventListener("change", () => {
        const chosen = all.find((o) => o.value === select.value);
        setValue(blockId, actionId, { type, selected_option: optionEntry(chosen) });
      });
      return select;
    }
    if (type === "external_select") return externalSelect(element, blockId, testid);
    if (type === "checkboxes" || type === "radio_buttons") {
      const multiple = type === "checkboxes";
      const initial = multiple ? (element.initial_options || []) : [element.initial_option].filter(Boolean);
      const chosen = new Set(initial.map((o) => o.value));
      const group = h("div", { class: "checks", "data-testid": testid });
      const boxes = (element.options || []).map((o) => {
        const input = h("input", {
          type: multiple ? "checkbox" : "radio",
          name: `${blockId}-${actionId}`,
          value: o.value,
          checked: chosen.has(o.value),
        });
        input.addEventListener("change", () => {
          const on = new Set([...group.querySelectorAll("input:checked")].map((box) => box.value));
          const picked = (element.options || []).filter((x) => on.has(x.value)).map(optionEntry);
          setValue(blockId, actionId, multiple
            ? { type, selected_options: picked }
            : { type, selected_option: picked[0] || null });
        });
        return h("label", { class: "check" }, input, h("span", {},
          h("span", { html: textHtml(o.text) }),
          o.description ? h("div", { class: "desc", html: textHtml(o.description) }) : null));
      });
      group.append(...boxes);
      return group;
    }
    if (type === "datepicker") {
      const field = h("input", { class: "text-input", type: "date", "data-testid": testid });
      field.value = element.initial_date || "";
      field.addEventListener("change", () =>
        setValue(blockId, actionId, { type, selected_date: field.value || null }));
      return field;
    }
    if (type === "users_select") {
      const users = Object.entries((ui.state && ui.state.users) || {}).filter(([, u]) => !u.is_bot);
      const select = h("select", { class: "select", "data-testid": testid },
        h("option", { value: "" }, placeholder || "Select a person"),
        users.map(([id, u]) => h("option", { value: id }, u.real_name || u.name)));
      if (element.initial_user) select.value = element.initial_user;
      select.addEventListener("change", () =>
        setValue(blockId, actionId, { type, selected_user: select.value || null }));
      return select;
    }
    return h("div", { class: "b-unknown" }, `[${type} input]`);
  }

  function externalSelect(element, blockId, testid) {
    const actionId = element.action_id;
    const minLength = element.min_query_length ?? 3;
    const placeholder = plainText(element.placeholder) || "Type to search";
    const field = h("input", {
      class: "text-input combo-input",
      placeholder,
      "data-testid": testid,
      id: `in-${blockId}`,
      role: "combobox",
      "aria-expanded": "false",
    });
    if (element.initial_option) field.value = plainText(element.initial_option.text);
    field.dataset.chosen = field.value;
    const list = h("div", { class: "combo-list", role: "listbox", hidden: true, "data-testid": `options-${blockId}` });
    let timer = null;
    let requestNo = 0;

    const choose = (option) => {
      setValue(blockId, actionId, { type: "external_select", selected_option: optionEntry(option) });
      field.dataset.chosen = plainText(option.text);
      field.value = field.dataset.chosen;
      list.hidden = true;
      field.setAttribute("aria-expanded", "false");
    };
    const show = (ack) => {
      list.replaceChildren();
      const item = (o) => h("div", {
        class: "combo-option",
        role: "option",
        dataset: { value: o.value },
        onmousedown: (event) => { event.preventDefault(); choose(o); },
      }, plainText(o.text));
      const options = (ack && ack.options) || [];
      const groups = (ack && ack.option_groups) || [];
      options.forEach((o) => list.append(item(o)));
      groups.forEach((g) => {
        list.append(h("div", { class: "combo-group" }, plainText(g.label)));
        (g.options || []).forEach((o) => list.append(item(o)));
      });
      if (!options.length && !groups.length) list.append(h("div", { class: "combo-note" }, "No matches"));
      list.hidden = false;
      field.setAttribute("aria-expanded", "true");
    };
    const load = () => {
      const query = field.value === field.dataset.chosen ? "" : field.value;
      if (query.length < minLength) return;
      const mine = ++requestNo;
      list.replaceChildren(h("div", { class: "combo-note" }, "Loading…"));
      list.hidden = false;
      act({
        kind: "suggest", user: ui.user, view_id: ui.modal.id,
        action_id: actionId, block_id: blockId, value: query,
      }, { refresh: false }).then((reply) => {
        if (mine !== requestNo) return;
        if (reply && reply.ok) show(reply.ack);
        else list.replaceChildren(h("div", { class: "combo-note" }, "Options could not be loaded"));
      });
    };
    field.addEventListener("focus", load);
    field.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(load, SUGGEST_DEBOUNCE_MS);
    });
    field.addEventListener("blur", () => {
      setTimeout(() => { list.hidden = true; field.value = field.dataset.chosen; }, 150);
    });
    return h("div", { class: "combo" }, field, list);
  }

  function renderInputBlock(block, ctx) {
    const blockId = block.block_id || "";
    const element = block.element || {};
    const label = h("label", { class: "input-label", for: `in-${blockId}` },
      plainText(block.label), block.optional ? h("span", { class: "optional" }, " (optional)") : null);
    const control = ctx.input ? inputControl(element, blockId) : h("div", {}, "[input]");
    const error = ui.modal && ui.modal.errors[blockId];
    return h("div", {
      class: `input-block${error ? " has-error" : ""}`,
      dataset: { blockId },
    }, label, control,
    block.hint ? h("div", { class: "input-hint", html: textHtml(block.hint) }) : null,
    error ? h("div", { class: "input-error", "data-testid": `error-${blockId}` }, error) : null);
  }

  function modalContext() {
    return {
      input: true,
      act: (element, blockId, value) => act({
        kind: "view_action",
        user: ui.user,
        view_id: ui.modal.id,
        action_id: element.action_id,
        block_id: blockId || null,
        value: value === undefined ? null : value,
      }),
    };
  }

  function renderModal(view) {
    const backdrop = $("#modal-backdrop");
    if (!view) {
      ui.modal = null;
      backdrop.hidden = true;
      $("#modal").replaceChildren();
      return;
    }
    const fresh = !ui.modal || ui.modal.id !== view.id || ui.modal.hash !== view.hash;
    if (!fresh && !ui.modal.dirty) return;
    if (fresh) ui.modal = { id: view.id, hash: view.hash, values: {}, errors: {}, banner: null };
    ui.modal.dirty = false;
    const keep = fresh ? null : structuredClone(ui.modal.values);
    ui.modal.values = {};
    const body = h("div", { class: "modal-body" },
      ui.modal.banner ? h("div", { class: "modal-banner" }, ui.modal.banner) : null,
      (view.blocks || []).map((b) => renderBlock(b, modalContext())));
    if (keep) restoreInputs(body, keep);
    const closeText = plainText(view.close) || "Cancel";
    const submit = view.submit
      ? h("button", { class: "btn btn-primary", type: "button", "data-testid": "modal-submit", onclick: submitModal },
        plainText(view.submit))
      : null;
    $("#modal").replaceChildren(
      h("div", { class: "modal-head" },
        h("h2", { class: "modal-title" }, plainText(view.title) || "App"),
        h("button", { class: "icon-btn", type: "button", "aria-label": "Close", onclick: closeModal }, "×")),
      body,
      h("div", { class: "modal-foot" },
        h("button", { class: "btn", type: "button", "data-testid": "modal-close", onclick: closeModal }, closeText),
        submit));
    backdrop.hidden = false;
    if (fresh) {
      const first = body.querySelector("input.text-input:not(.combo-input), textarea, select");
      if (first) first.focus({ preventScroll: true });
    }
  }

  // Re-rendering for errors must not lose what the user entered.
  function restoreInputs(body, values) {
    for (const [blockId, actions] of Object.entries(values)) {
      const entry = Object.values(actions)[0];
      const wrap = body.querySelector(`[data-block-id="${CSS.escape(blockId)}"]`);
      if (!wrap || !entry) continue;
      const field = wrap.querySelector("input.text-input, textarea, select");
      if (entry.type === "external_select" && field) {
        field.value = entry.selected_option ? plainText(entry.selected_option.text) : "";
        field.dataset.chosen = field.value;
      } else if ("value" in entry && field) {
        field.value = entry.value || "";
      } else if ("selected_option" in entry && field && field.tagName === "SELECT") {
        field.value = entry.selected_option ? entry.selected_option.value : "";
      } else if ("selected_options" in entry) {
        const picked = new Set(entry.selected_options.map((o) => o.value));
        wrap.querySelectorAll("input[type=checkbox]").forEach((box) => { box.checked = picked.has(box.value); });
      }
    }
    // Rendering the inputs reset the values to their initial ones; put the user's back.
    ui.modal.values = values;
  }

  async function submitModal(event) {
    const button = event.currentTarget;
    button.disabled = true;
    const modal = ui.modal;
    try {
      const reply = await act({ kind: "submit", user: ui.user, view_id: modal.id, values: modal.values },
        { refresh: false });
      if (ui.modal !== modal) return;
      modal.errors = {};
      modal.banner = null;
      if (!reply || !reply.ok) {
        modal.banner = "We had some trouble connecting. Try again?";
      } else if (reply.ack && reply.ack.response_action === "errors") {
        modal.errors = reply.ack.errors || {};
      }
      modal.dirty = true;
      if (ui.state && ui.state.view) renderModal(ui.state.view);
    } finally {
      button.disabled = false;
      await refresh();
    }
  }

  async function closeModal() {
    if (!ui.modal) return;
    await act({ kind: "close", user: ui.user, view_id: ui.modal.id });
  }

  function confirmDialog(confirm) {
    return new Promise((resolve) => {
      const backdrop = $("#confirm-backdrop");
      const done = (answer) => { backdrop.hidden = true; resolve(answer); };
      $("#confirm").replaceChildren(
        h("div", { class: "modal-head" }, h("h2", { class: "modal-title" }, plainText(confirm.title) || "Are you sure?")),
        h("div", { class: "modal-body" }, textNode(confirm.text)),
        h("div", { class: "modal-foot" },
          h("button", { class: "btn", type: "button", "data-testid": "confirm-deny", onclick: () => done(false) },
            plainText(confirm.deny) || "Cancel"),
          h("button", {
            class: buttonClass(confirm.style || "primary"), type: "button",
            "data-testid": "confirm-ok", onclick: () => done(true),
          }, plainText(confirm.confirm) || "Yes")));
      backdrop.hidden = false;
    });
  }

  // -- talking to the local Slack ------------------------------------------------------------

  let toastTimer = null;
  function toast(text) {
    const node = $("#toast");
    node.textContent = text;
    node.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { node.hidden = true; }, 4000);
  }

  async function act(body, { refresh: again = true } = {}) {
    let reply = null;
    try {
      const response = await fetch("/playground/act", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      reply = await response.json();
      if (!response.ok) toast(reply.error || `request failed (${response.status})`);
      else if (!reply.ok && body.kind !== "command" && body.kind !== "submit") {
        toast(reply.timed_out ? "The app did not respond in time." : `The app answered ${reply.status}.`);
      }
    } catch (error) {
      toast("The local Slack is not answering.");
    }
    if (again) await refresh();
    return reply;
  }

  async function refresh() {
    if (!ui.user) return;
    const params = new URLSearchParams({ user: ui.user });
    if (ui.channel) params.set("channel", ui.channel);
    let text;
    try {
      const response = await fetch(`/playground/state?${params}`, { cache: "no-store" });
      text = await response.text();
    } catch (error) {
      $("#connection").classList.add("off");
      $("#connection").innerHTML = '<span class="dot"></span>local Slack stopped';
      return;
    }
    if (text === ui.stateText) return;
    ui.stateText = text;
    ui.state = JSON.parse(text);
    if (!ui.channel) ui.channel = ui.state.channel;
    renderChrome();
    renderChannel();
    renderHome();
    renderModal(ui.state.view);
  }

  function renderChrome() {
    const state = ui.state;
    $("#workspace-name").textContent = state.workspace.name;
    const me = state.demo_users.find((u) => u.id === ui.user);
    $("#role-hint").textContent = me
      ? roleHint(me.label)
      : "";
    const list = $("#channel-list");
    const channels = state.channels.filter((c) => !c.is_im || c.id === ui.channel);
    list.replaceChildren(...channels.map((c) => h("li", {
      class: c.id === ui.channel && !ui.home ? "active" : "",
      onclick: () => {
        ui.channel = c.id; ui.home = false; closeThread(); ui.stateText = ""; refresh();
      },
    }, c.is_im ? `● ${c.name}` : `# ${c.name}`)));
    const connection = $("#connection");
    connection.classList.toggle("off", !state.connected);
    connection.innerHTML = state.connected
      ? '<span class="dot"></span>voicebot is connected'
      : '<span class="dot"></span>no bot connected';
    renderChips(state.jobs || []);
  }

  function roleHint(label) {
    if (label === "requester") return "May submit jobs: try /voice submit.";
    if (label === "approver") return "May approve or reject submit requests.";
    if (label === "admin") return "Manages roles: /voice grant @user requester.";
    return label;
  }

  let chipsFor = "";
  function renderChips(jobs) {
    const key = JSON.stringify(jobs);
    if (key === chipsFor) return;
    chipsFor = key;
    const job = jobs[0];
    const commands = ["/voice help", "/voice submit"];
    if (job) {
      commands.push(`/voice submit ${job} voice_name=narrator sex=female`);
      commands.push(`/voice status ${job}`);
    }
    commands.push("/voice roles");
    $("#chips").replaceChildren(...commands.map((c) => h("button", {
      class: "chip",
      type: "button",
      title: "Put this in the message box",
      onclick: () => { const input = $("#composer-input"); input.value = c; input.focus(); },
    }, c.length > 48 ? c.slice(0, 46) + "…" : c)));
  }

  function setUser(id) {
    ui.user = id;
    ui.stateText = "";
    ui.modal = null;
    $("#user-picker").value = id;
    const url = new URL(window.location.href);
    url.searchParams.set("as", id);
    window.history.replaceState(null, "", url);
    refresh();
  }

  async function start() {
    const response = await fetch("/playground/state", { cache: "no-store" });
    const first = await response.json();
    ui.state = first;
    const picker = $("#user-picker");
    const people = first.demo_users.length
      ? first.demo_users
      : Object.entries(first.users).filter(([, u]) => !u.is_bot).map(([id, u]) => ({ id, real_name: u.real_name, label: "" }));
    picker.replaceChildren(...people.map((u) =>
      h("option", { value: u.id }, u.label ? `${u.real_name} · ${u.label}` : u.real_name)));
    picker.addEventListener("change", () => setUser(picker.value));
    const wanted = new URL(window.location.href).searchParams.get("as");
    ui.channel = first.channel;
    setUser(people.some((u) => u.id === wanted) ? wanted : (people[0] ? people[0].id : ""));

    $("#composer").addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = $("#composer-input");
      const text = input.value.trim();
      if (!text) return;
      if (!text.startsWith("/")) {
        toast("Only slash commands reach the bot here: try /voice help");
        return;
      }
      if (!ui.channel) { toast("No channel to post in."); return; }
      input.value = "";
      await act({ kind: "command", user: ui.user, channel: ui.channel, text });
    });
    $("#thread-close").addEventListener("click", closeThread);
    $("#home-link").addEventListener("click", openHome);
    document.addEventListener("click", (event) => {
      const link = event.target.closest("a[data-permalink-ts]");
      if (!link) return;
      event.preventDefault();
      const ts = link.dataset.permalinkTs;
      const parent = (ui.state.messages || []).find((m) => m.ts === ts);
      if (parent) {
        openThread(ts);
        const node = document.querySelector(`#messages .msg[data-ts="${ts}"]`);
        if (node) node.scrollIntoView({ block: "center", behavior: "smooth" });
      }
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !$("#confirm-backdrop").hidden) return;
      if (event.key === "Escape" && ui.modal) closeModal();
    });
    const poll = async () => {
      await refresh();
      setTimeout(poll, POLL_MS);
    };
    setTimeout(poll, POLL_MS);
  }

  start();
})();
