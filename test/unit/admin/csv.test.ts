import { describe, expect, it } from 'vitest';
import { parseCsv, toCsv } from '../../../src/admin/csv.ts';

describe('CSV formula neutralization', () => {
  it('writes a cell a spreadsheet would run with a quote in front, quoted', () => {
    expect(toCsv([['=HYPERLINK("http://x")', '+1', '-2+3', '@SUM(A1)', '\tx', '\rx', 'plain', '10.0.0.0/8', '::1']]))
      .toBe(`"'=HYPERLINK(""http://x"")","'+1","'-2+3","'@SUM(A1)","'\tx","'\rx",plain,10.0.0.0/8,::1\r\n`);
  });

  it('reads exactly what it wrote, quotes of the value\'s own included', () => {
    const values = ['=1+2', "'=1+2", "''-x", "'", "'quoted'", "a'=b", '-', '', '@', ' =x', 'x=1', '=', "'\t", 'office, "main"', 'line\nbreak', '+44 20 7946 0000'];
    const parsed = parseCsv(toCsv([values]));
    expect(parsed).toEqual({ ok: true, rows: [values] });
  });

  it('reads a hand-written formula cell as text, and takes one quote off a neutralized one quoted or not', () => {
    expect(parseCsv('=1+2,"\'=1+2",\'-5 note,\'plain\r\n')).toEqual({ ok: true, rows: [['=1+2', '=1+2', '-5 note', "'plain"]] });
  });
});
