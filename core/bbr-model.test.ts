import { describe, expect, it } from 'vitest';
import { scanModel } from './bbr-model.ts';

const s = (t: string, limit?: number) => scanModel(Buffer.from(t), limit);

describe('scanModel', () => {
  it('finds the top-level model past nested decoys', () => {
    const body = '{"messages":[{"role":"user","content":"{\\"model\\":\\"evil\\"} ]}"}],"meta":{"model":"nested"},"n":-1.5e3,"t":true,"z":null,"model":"top"}';
    expect(s(body)).toEqual({ status: 'ok', model: 'top' });
    expect(s('{"mod\\u0065l":"a\\u00e9\\ud83d\\ude00\\/b"}')).toEqual({ status: 'ok', model: 'aé😀/b' });
  });
  it('stops at the model: what follows is not validated', () => {
    expect(s('{"model":"x", this is not json')).toEqual({ status: 'ok', model: 'x' });
  });
  it('names every way a body has no usable model', () => {
    expect(s('')).toEqual({ status: 'no_body' });
    expect(s('{}')).toEqual({ status: 'no_model' });
    expect(s('{"prompt":"x"}')).toEqual({ status: 'no_model' });
    expect(s('{"model":42}')).toEqual({ status: 'not_string' });
    expect(s('{"model":null}')).toEqual({ status: 'not_string' });
    expect(s('{"model":""}')).toEqual({ status: 'bad_model', why: 'empty' });
    expect(s('{"model":"a\\nb"}')).toEqual({ status: 'bad_model', why: 'control characters' });
    expect(s('not json')).toEqual({ status: 'not_json', at: 0 });
    expect(s('["model","x"]')).toEqual({ status: 'not_json', at: 0 });
    expect(s('{"prompt":"x"').status).toBe('not_json');
    expect(s('{"a\nb":1}').status).toBe('not_json');
    // Skipped values are not validated beyond their quoting, as in the module.
    expect(s('{"a":"raw\ncontrol","model":"m"}')).toEqual({ status: 'ok', model: 'm' });
    expect(s('{"a":"esc \\" quote \\\\","b":["x\\"]"],"model":"m"}')).toEqual({ status: 'ok', model: 'm' });
    expect(s('{"a":"unterminated').status).toBe('not_json');
    expect(s('{"a":"ends in escape\\').status).toBe('not_json');
  });
  it('scans at most the limit', () => {
    const late = `{"prompt":"${'p'.repeat(1000)}","model":"late"}`;
    expect(s(late, 100)).toEqual({ status: 'too_large' });
    expect(s(late, late.length)).toEqual({ status: 'ok', model: 'late' });
    expect(s(`{"model":"early","prompt":"${'p'.repeat(1000)}"}`, 100)).toEqual({ status: 'ok', model: 'early' });
    expect(s(`{"a":"${'\\"'.repeat(100)}","model":"m"}`, 50)).toEqual({ status: 'too_large' });
  });
});
