// The chat page in headless Chromium: upload a picture, ask a question, wait for the streamed answer to finish
// (the usage line appears), save a screenshot. Prints one JSON line; exits non-zero when no answer came.
//
//   node web_ui.mjs http://127.0.0.1:8080 image.png screenshot.png [chromium]     ($QUESTION: what to ask)
import { chromium } from "playwright-core";

const [base, imagePath, shot, exe = "/usr/bin/chromium"] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: exe, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 720 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(base + "/");
  await page.waitForFunction(() => document.getElementById("title").textContent !== "ixc");
  await page.fill("#max_tokens", "16");
  await page.fill("#temperature", "0");
  await page.setInputFiles("#file", imagePath);
  await page.waitForSelector("#attached span");
  await page.fill("#input", process.env.QUESTION || "What is in the picture?");
  await page.click("#send");
  await page.waitForSelector(".msg.assistant .meta", { timeout: 120000 });
  const answer = await page.$eval(".msg.assistant", (el) => el.firstChild.textContent);
  const meta = await page.$eval(".msg.assistant .meta", (el) => el.textContent);
  const hasImage = await page.$eval(".msg.user img", (el) => el.naturalWidth > 0);
  await page.screenshot({ path: shot });
  const ok = answer.length > 0 && hasImage && errors.length === 0;
  console.log(JSON.stringify({ ok, answer, meta, hasImage, errors }));
  process.exit(ok ? 0 : 1);
} finally {
  await browser.close();
}
