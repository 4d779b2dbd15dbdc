// Markdown to HTML for the model's answers (every piece of text is escaped; only the tags made
// here are produced), and a small syntax highlighter for fenced code blocks.
"use strict";
(function () {
  function escapeHtml(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }

  const KEYWORDS = {
    common: "if else for while do return break continue switch case default try catch finally throw new class import export from as in of with yield async await true false null",
    python: "def lambda pass raise except elif global nonlocal del assert is not and or None True False self print range len",
    rust: "fn let mut pub impl struct enum trait match loop where use mod crate super const static unsafe move ref dyn Self Some None Ok Err",
    js: "function var let const typeof instanceof this undefined delete void extends static get set interface type implements",
    c: "int char float double long short unsigned signed void struct union typedef sizeof static const extern include define auto bool public private protected virtual template namespace using std package func go defer chan map range select",
    shell: "echo then fi esac done local export set unset cd sudo function read exit",
    sql: "select insert update delete from where join left right inner outer on group by order having limit values into create table drop alter and or not",
  };
  const LANG = { py: "python", python: "python", rs: "rust", rust: "rust", js: "js", javascript: "js", ts: "js", typescript: "js", jsx: "js", tsx: "js",
    c: "c", cpp: "c", "c++": "c", h: "c", java: "c", go: "c", cs: "c", kotlin: "c", swift: "c", sh: "shell", bash: "shell", shell: "shell", zsh: "shell", sql: "sql" };
  const HASH_COMMENTS = new Set(["python", "shell"]);

  function keywordSet(lang) {
    const words = KEYWORDS.common + " " + (KEYWORDS[lang] || Object.values(KEYWORDS).join(" "));
    return new Set(words.split(/\s+/));
  }

  /** Highlighted HTML of `code`: comments, strings, numbers, keywords, called names. */
  function highlight(code, langName) {
    const lang = LANG[(langName || "").toLowerCase()] || "";
    if (["json", "yaml", "toml", "text", "txt", "plain"].includes((langName || "").toLowerCase())) return escapeHtml(code);
    const words = keywordSet(lang);
    const hash = HASH_COMMENTS.has(lang) || lang === "";
    const pattern = new RegExp([
      "(\\/\\/[^\\n]*|\\/\\*[\\s\\S]*?(?:\\*\\/|$)" + (hash ? "|#[^\\n]*" : "") + (lang === "sql" ? "|--[^\\n]*" : "") + ")",
      "(\"\"\"[\\s\\S]*?(?:\"\"\"|$)|'''[\\s\\S]*?(?:'''|$)|\"(?:\\\\.|[^\"\\\\\\n])*\"?|'(?:\\\\.|[^'\\\\\\n])*'?|`(?:\\\\.|[^`\\\\])*`?)",
      "(\\b(?:0x[0-9a-fA-F_]+|\\d[\\d_]*(?:\\.\\d+)?(?:[eE][+-]?\\d+)?)\\b)",
      "([A-Za-z_$][\\w$]*)",
    ].join("|"), "g");
    let out = "";
    let last = 0;
    let match;
    while ((match = pattern.exec(code)) !== null) {
      if (match[0] === "") { pattern.lastIndex++; continue; }
      out += escapeHtml(code.slice(last, match.index));
      const [text, comment, string, number, word] = match;
      if (lang === "rust" && string && string.startsWith("'") && !/^'(\\.|[^'])'$/.test(string)) {
        // a Rust lifetime, not a char literal
        out += escapeHtml(text.slice(0, 1));
        pattern.lastIndex = match.index + 1;
        last = match.index + 1;
        continue;
      }
      let cls = null;
      if (comment) cls = "tok-com";
      else if (string) cls = "tok-str";
      else if (number) cls = "tok-num";
      else if (word && words.has(word)) cls = "tok-kw";
      else if (word && /^\s*\(/.test(code.slice(pattern.lastIndex))) cls = "tok-fn";
      out += cls ? '<span class="' + cls + '">' + escapeHtml(text) + "</span>" : escapeHtml(text);
      last = pattern.lastIndex;
    }
    return out + escapeHtml(code.slice(last));
  }

  function safeUrl(url) {
    const trimmed = url.trim();
    return /^(https?:|mailto:|\/|#)/i.test(trimmed) ? trimmed : null;
  }

  /** Inline markdown: code spans, links, bold, italic, strikethrough. */
  function inline(text) {
    const codes = [];
    let s = text.replace(/(`+)([\s\S]*?[^`])\1(?!`)/g, (_, __, code) => {
      codes.push("<code>" + escapeHtml(code.trim() ? code.replace(/^ (.*) $/, "$1") : code) + "</code>");
      return "\u0000" + (codes.length - 1) + "\u0000";
    });
    s = escapeHtml(s);
    s = s.replace(/\[([^\]]+)\]\(([^)\s]+)(?:\s+&quot;[^&]*&quot;)?\)/g, (all, label, href) => {
      const url = safeUrl(href.replace(/&amp;/g, "&"));
      return url ? '<a href="' + escapeHtml(url) + '" target="_blank" rel="noopener noreferrer">' + label + "</a>" : all;
    });
    s = s.replace(/\*\*([^*]+)\*\*|__([^_]+)__/g, (_, a, b) => "<strong>" + (a || b) + "</strong>");
    s = s.replace(/(^|[^\w*])\*([^*\s][^*]*?)\*(?!\w)|(^|\W)_([^_\s][^_]*?)_(?!\w)/g, (_, p1, a, p2, b) => (p1 || p2 || "") + "<em>" + (a || b) + "</em>");
    s = s.replace(/~~([^~]+)~~/g, "<del>$1</del>");
    return s.replace(/\u0000(\d+)\u0000/g, (_, i) => codes[Number(i)]);
  }

  function codeBlock(code, lang) {
    const label = lang ? escapeHtml(lang) : "code";
    return '<div class="code"><div class="code-head"><span>' + label + '</span><button type="button" class="copy" data-copy>Copy</button></div><pre><code>' +
      highlight(code, lang) + "</code></pre></div>";
  }

  const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
  const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
  const ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
  const QUOTE = /^ {0,3}> ?(.*)$/;
  const TABLE_SEP = /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/;

  function startsBlock(line) {
    return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || ITEM.test(line) || QUOTE.test(line);
  }

  function cells(line) {
    return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => inline(c.trim()));
  }

  /** Block markdown: fences (an unclosed one runs to the end, as while streaming), headings,
   *  rules, lists (nested by indentation), quotes, tables and paragraphs. */
  function render(text) {
    const lines = text.replace(/\r\n?/g, "\n").split("\n");
    let html = "";
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      let m;
      if (!line.trim()) { i++; continue; }
      if ((m = FENCE.exec(line))) {
        const close = new RegExp("^ {0,3}" + m[1][0] + "{" + m[1].length + ",}\\s*$");
        const body = [];
        for (i++; i < lines.length && !close.test(lines[i]); i++) body.push(lines[i]);
        i++;
        html += codeBlock(body.join("\n"), m[2]);
      } else if ((m = HEADING.exec(line))) {
        html += "<h" + m[1].length + ">" + inline(m[2]) + "</h" + m[1].length + ">";
        i++;
      } else if (RULE.test(line)) {
        html += "<hr>";
        i++;
      } else if (QUOTE.test(line)) {
        const body = [];
        while (i < lines.length && (m = QUOTE.exec(lines[i]))) { body.push(m[1]); i++; }
        html += "<blockquote>" + render(body.join("\n")) + "</blockquote>";
      } else if ((m = ITEM.exec(line))) {
        const [list, next] = renderList(lines, i);
        html += list;
        i = next;
      } else if (line.includes("|") && i + 1 < lines.length && TABLE_SEP.test(lines[i + 1])) {
        let table = "<table><thead><tr>" + cells(line).map((c) => "<th>" + c + "</th>").join("") + "</tr></thead><tbody>";
        for (i += 2; i < lines.length && lines[i].includes("|") && lines[i].trim(); i++) {
          table += "<tr>" + cells(lines[i]).map((c) => "<td>" + c + "</td>").join("") + "</tr>";
        }
        html += table + "</tbody></table>";
      } else {
        const para = [];
        while (i < lines.length && lines[i].trim() && !(para.length && startsBlock(lines[i]))) { para.push(lines[i].trim()); i++; }
        html += "<p>" + para.map(inline).join("<br>") + "</p>";
      }
    }
    return html;
  }

  /** A list starting at line `start`; returns [html, index of the first line after it]. */
  function renderList(lines, start) {
    const first = ITEM.exec(lines[start]);
    const indent = first[1].length;
    const ordered = /\d/.test(first[2]);
    const items = [];
    let i = start;
    while (i < lines.length) {
      const m = ITEM.exec(lines[i]);
      if (m && m[1].length === indent && /\d/.test(m[2]) === ordered) {
        items.push([m[3]]);
        i++;
      } else if (items.length && lines[i].trim() && (lines[i].match(/^\s*/)[0].length > indent)) {
        items[items.length - 1].push(lines[i].slice(Math.min(indent + 2, lines[i].match(/^\s*/)[0].length)));
        i++;
      } else if (!lines[i].trim() && i + 1 < lines.length && (ITEM.test(lines[i + 1]) || /^\s+\S/.test(lines[i + 1]))) {
        items.length && items[items.length - 1].push("");
        i++;
      } else {
        break;
      }
    }
    const tag = ordered ? "ol" : "ul";
    const startAttr = ordered && parseInt(first[2], 10) !== 1 ? ' start="' + parseInt(first[2], 10) + '"' : "";
    const body = items.map((item) => {
      const inner = item.length === 1 ? inline(item[0]) : render(item.join("\n")).replace(/^<p>([\s\S]*?)<\/p>/, "$1");
      return "<li>" + inner + "</li>";
    }).join("");
    return ["<" + tag + startAttr + ">" + body + "</" + tag + ">", i];
  }

  window.hearth = Object.assign(window.hearth || {}, { renderMarkdown: render, highlight, escapeHtml });
})();
