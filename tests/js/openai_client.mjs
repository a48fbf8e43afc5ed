// The official openai npm client against ixc serve: a chat with an image (data: URL), whole and streamed; the
// streamed text must equal the whole answer. Prints one JSON line; exits non-zero on any mismatch.
//
//   node openai_client.mjs http://127.0.0.1:8080 image.png
import fs from "node:fs";
import OpenAI from "openai";

const [base, imagePath] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base + "/v1", apiKey: "test-key" });
const image = "data:image/png;base64," + fs.readFileSync(imagePath).toString("base64");
const messages = [{ role: "user", content: [
  { type: "image_url", image_url: { url: image } },
  { type: "text", text: "What is in the picture?" },
] }];

const models = await client.models.list();
const model = models.data[0].id;
const whole = await client.chat.completions.create({ model, messages, temperature: 0, max_tokens: 12 });
const stream = await client.chat.completions.create({
  model, messages, temperature: 0, max_tokens: 12, stream: true, stream_options: { include_usage: true },
});
let streamed = "", chunks = 0, usage = null, finish = null;
for await (const chunk of stream) {
  chunks++;
  if (chunk.choices.length && chunk.choices[0].delta.content) streamed += chunk.choices[0].delta.content;
  if (chunk.choices.length && chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  if (chunk.usage) usage = chunk.usage;
}
const answer = whole.choices[0].message.content;
const ok = streamed === answer && chunks >= 3 && usage !== null && usage.completion_tokens === whole.usage.completion_tokens
  && finish === whole.choices[0].finish_reason && model.length > 0;
console.log(JSON.stringify({ ok, model, answer, streamed, chunks, usage, finish }));
process.exit(ok ? 0 : 1);
