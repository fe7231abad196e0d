// openai.test.mjs - `deepseek serve` against the official openai npm client (v6), on a tiny
// random-weight model: the tests check structure, the reasoning/content split, usage,
// determinism and errors, not the quality of the words.
//
// Run: node --test tests/server/openai.test.mjs   (DS_BIN = the deepseek binary, DS_SHARED =
// the shared folder). The server is started on a free port of 127.0.0.1 and always killed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import OpenAI from 'openai';

const BIN = process.env.DS_BIN;
const MODEL = `${process.env.DS_SHARED}/testdata/models/tiny-qwen2-f32.gguf`;
const KEY = 'test-key-123';
let server, base, client;

before(async () => {
  server = spawn(BIN, ['serve', '-m', MODEL, '--port', '0', '-np', '2', '-c', '1024',
                       '--api-key', KEY, '--max-tokens', '256'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const port = await new Promise((resolve, reject) => {
    let err = '';
    server.stderr.on('data', (d) => {
      err += d;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    server.on('exit', (code) => reject(new Error(`server exited ${code}: ${err}`)));
  });
  base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    const r = await fetch(`${base}/health`).catch(() => null);
    if (r && r.status === 200) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: KEY, maxRetries: 0, timeout: 30000 });
});

after(() => { if (server && server.exitCode === null) server.kill('SIGKILL'); });

const user = (content) => [{ role: 'user', content }];

function checkUsage(u) {
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
  assert.equal(u.prompt_cache_hit_tokens + u.prompt_cache_miss_tokens, u.prompt_tokens);
  assert.equal(u.prompt_tokens_details.cached_tokens, u.prompt_cache_hit_tokens);
  assert.ok(u.completion_tokens_details.reasoning_tokens <= u.completion_tokens);
}

async function streamAll(params) {
  const stream = await client.chat.completions.create({ ...params, stream: true,
                                                       stream_options: { include_usage: true } });
  const out = { reasoning: '', content: '', order: [], usage: null, finish: null, role: null, tool_calls: [] };
  for await (const chunk of stream) {
    if (chunk.usage) { out.usage = chunk.usage; assert.equal(chunk.choices.length, 0); continue; }
    const c = chunk.choices[0];
    if (c.delta.role) out.role = c.delta.role;
    if (c.delta.reasoning_content) { out.reasoning += c.delta.reasoning_content; out.order.push('r'); }
    if (c.delta.content) { out.content += c.delta.content; out.order.push('c'); }
    if (c.delta.tool_calls) out.tool_calls.push(...c.delta.tool_calls);
    if (c.finish_reason) out.finish = c.finish_reason;
  }
  return out;
}

test('models', async () => {
  const list = await client.models.list();
  assert.equal(list.data.length, 1);
  assert.equal(list.data[0].id, 'tiny-qwen2-f32');
});

test('plain chat: reasoning_content apart from content, usage', async () => {
  const r = await client.chat.completions.create({ model: 'deepseek-reasoner', messages: user('Hello'),
                                                  max_tokens: 12, temperature: 0 });
  const m = r.choices[0].message;
  assert.equal(m.role, 'assistant');
  assert.equal(typeof m.reasoning_content, 'string'); // the R1 template opens <think>
  assert.ok(m.reasoning_content.length > 0);
  assert.ok(!m.reasoning_content.includes('<think>') && !m.content.includes('</think>'));
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.equal(r.object, 'chat.completion');
  checkUsage(r.usage);
  assert.ok(r.usage.completion_tokens <= 12);
  assert.ok(r.usage.completion_tokens_details.reasoning_tokens > 0);
});

test('thinking disabled: everything is content', async () => {
  const r = await client.chat.completions.create({ model: 'x', messages: user('Hello'), max_tokens: 8,
                                                  temperature: 0, thinking: { type: 'disabled' } });
  assert.equal(r.choices[0].message.reasoning_content, null);
  assert.equal(r.usage.completion_tokens_details.reasoning_tokens, 0);
});

test('streamed chat: role first, reasoning then content, finish, usage, same text as non-stream', async () => {
  const params = { model: 'x', messages: user('Tell me a story'), max_tokens: 24, temperature: 0 };
  const s = await streamAll(params);
  assert.equal(s.role, 'assistant');
  assert.ok(s.finish === 'stop' || s.finish === 'length');
  assert.ok(s.usage);
  checkUsage(s.usage);
  const firstContent = s.order.indexOf('c');
  if (firstContent >= 0) assert.ok(!s.order.slice(firstContent).includes('r'), 'reasoning after content');
  const r = await client.chat.completions.create(params);
  assert.equal(s.reasoning, r.choices[0].message.reasoning_content ?? '');
  assert.equal(s.content, r.choices[0].message.content ?? '');
  assert.equal(s.usage.completion_tokens, r.usage.completion_tokens);
});

test('the stream helper accepts the stream (role and finish_reason present)', async () => {
  const runner = client.chat.completions.stream({ model: 'x', messages: user('hi'), max_tokens: 6 });
  const done = await runner.finalChatCompletion();
  assert.ok(done.choices[0].finish_reason);
});

test('prefix cache: a repeated prompt reports cache hits', async () => {
  const messages = user('The same prompt, twice, for the cache. '.repeat(4));
  const a = await client.chat.completions.create({ model: 'x', messages, max_tokens: 2 });
  const b = await client.chat.completions.create({ model: 'x', messages, max_tokens: 2 });
  checkUsage(b.usage);
  assert.equal(b.usage.prompt_cache_hit_tokens, a.usage.prompt_tokens - 1);
});

test('seed determinism at temperature 1', async () => {
  const p = { model: 'x', messages: user('Pick words'), max_tokens: 16, temperature: 1, seed: 1234,
              thinking: { type: 'disabled' } };
  const a = await client.chat.completions.create(p);
  const b = await client.chat.completions.create(p);
  const c = await client.chat.completions.create({ ...p, seed: 99 });
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  assert.equal(a.usage.completion_tokens, b.usage.completion_tokens);
  // A different seed gives a different reply (16 tokens at temperature 1 are not all forced).
  assert.notEqual(a.choices[0].message.content + a.usage.completion_tokens,
                  c.choices[0].message.content + c.usage.completion_tokens);
});

test('stop sequence ends the reply before it', async () => {
  const p = { model: 'x', messages: user('Hello there'), max_tokens: 40, temperature: 1, seed: 7,
              thinking: { type: 'disabled' } };
  const full = (await client.chat.completions.create(p)).choices[0].message.content;
  // A stop string of three printable ASCII characters from the second half of the reply.
  let at = -1;
  for (let i = Math.floor(full.length / 2); i + 3 <= full.length && at < 0; i++)
    if (/^[!-~][ -~]{2}$/.test(full.slice(i, i + 3))) at = i;
  assert.ok(at >= 0, `no ASCII run in ${JSON.stringify(full)}`);
  const stop = full.slice(at, at + 3);
  const r = await client.chat.completions.create({ ...p, stop: [stop, 'never-seen-stop'] });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.choices[0].message.content, full.slice(0, full.indexOf(stop)));
  const s = await streamAll({ ...p, stop });
  assert.equal(s.content, r.choices[0].message.content);
  assert.equal(s.finish, 'stop');
});

test('logprobs and top_logprobs', async () => {
  const r = await client.chat.completions.create({ model: 'x', messages: user('hi'), max_tokens: 4,
                                                  logprobs: true, top_logprobs: 3, temperature: 0,
                                                  thinking: { type: 'disabled' } });
  const lp = r.choices[0].logprobs.content;
  assert.equal(lp.length, r.usage.completion_tokens);
  for (const e of lp) {
    assert.ok(e.logprob <= 0);
    assert.equal(e.top_logprobs.length, 3);
    assert.ok(e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob);
    // Greedy: the chosen token is the most likely one.
    assert.equal(e.logprob, e.top_logprobs[0].logprob);
    const p = e.top_logprobs.reduce((s, t) => s + Math.exp(t.logprob), 0);
    assert.ok(p <= 1.0001);
  }
});

test('JSON mode output parses (plain and streamed)', async () => {
  for (const seed of [1, 2, 3]) {
    const p = { model: 'x', messages: user('Answer in json'), max_tokens: 48, seed,
                response_format: { type: 'json_object' } };
    const r = await client.chat.completions.create(p);
    const v = JSON.parse(r.choices[0].message.content);
    assert.equal(typeof v, 'object');
    const s = await streamAll(p);
    assert.deepEqual(JSON.parse(s.content), v);
  }
});

test('tools round trip: a forced call comes back parsed, its result is accepted', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'weather',
                   parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
  const messages = user('Weather in Paris?');
  const r = await client.chat.completions.create({ model: 'x', messages, tools, tool_choice: 'required',
                                                  max_tokens: 64, seed: 5 });
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  const call = r.choices[0].message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.equal(typeof JSON.parse(call.function.arguments), 'object');
  const s = await streamAll({ model: 'x', messages, tools, max_tokens: 64, seed: 5,
                              tool_choice: { type: 'function', function: { name: 'get_weather' } } });
  assert.equal(s.finish, 'tool_calls');
  assert.equal(s.tool_calls[0].function.name, 'get_weather');
  const next = await client.chat.completions.create({ model: 'x', tools, max_tokens: 4, messages: [
    ...messages, { role: 'assistant', content: null, tool_calls: [call] },
    { role: 'tool', tool_call_id: call.id, content: '{"temp": 21}' }] });
  assert.ok(next.choices[0].finish_reason);
});

test('completions (raw prompt)', async () => {
  const r = await client.completions.create({ model: 'x', prompt: 'Once upon a time', max_tokens: 5,
                                             temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  assert.equal(r.usage.completion_tokens, 5);
});

test('errors surface as the client\'s typed errors', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'x', messages: [] }),
                       (e) => e instanceof OpenAI.BadRequestError && e.status === 400 &&
                              /messages/.test(e.message));
  await assert.rejects(client.chat.completions.create({ model: 'x', messages: user('hi'), temperature: 5 }),
                       (e) => e instanceof OpenAI.UnprocessableEntityError && e.param === 'temperature');
  await assert.rejects(client.chat.completions.create({ model: 'x', messages: user('hi'), max_tokens: -1 }),
                       (e) => e instanceof OpenAI.UnprocessableEntityError);
  const bad = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError);
  await assert.rejects(client.chat.completions.create({ model: 'x', messages: user('word '.repeat(1500)) }),
                       (e) => e instanceof OpenAI.BadRequestError && /tokens too many/.test(e.message));
  // The server still answers.
  const r = await client.chat.completions.create({ model: 'x', messages: user('ok?'), max_tokens: 2 });
  assert.ok(r.choices[0].finish_reason);
});
