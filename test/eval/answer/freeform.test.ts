/**
 * Free-form grading at Math-Verify's level: `thinkwhen grade --jsonl` over the stored case set
 * (freeform-cases.jsonl: base-model responses and answer forms, each with a careful label and a kind) must
 * agree with the labels on >= 95% of cases and accept none of the negative controls.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..', '..');

interface Case {
  id: string;
  kind: string;
  /** `answer`: pred is an answer string; otherwise a whole response graded with `--extract <mode>`. */
  mode: 'answer' | 'math' | 'gsm8k';
  gold: string;
  pred: string;
  label: boolean;
  note: string;
  /** 1: written before the free-form rules were implemented; 2: after, measured before changes for them. */
  batch: 1 | 2;
}

const cases: Case[] = readFileSync(path.join(here, 'freeform-cases.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => JSON.parse(l) as Case);

/** Grades every case through the CLI, one `grade --jsonl -` run per extraction mode. */
function gradeAll(): Map<string, { equivalent: boolean; extracted?: string | null }> {
  const verdicts = new Map<string, { equivalent: boolean; extracted?: string | null }>();
  for (const mode of ['answer', 'math', 'gsm8k'] as const) {
    const group = cases.filter((c) => c.mode === mode);
    const args = ['bin/thinkwhen.js', 'grade', '--jsonl', '-', ...(mode === 'answer' ? [] : ['--extract', mode])];
    const r = spawnSync(process.execPath, args, {
      cwd: repoRoot,
      input: group.map((c) => JSON.stringify(c)).join('\n'),
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, group.length);
    for (const [i, c] of group.entries()) verdicts.set(c.id, JSON.parse(lines[i]));
  }
  return verdicts;
}

test('the case set: >= 150 cases, about half full responses, negative controls in every kind', () => {
  assert.ok(cases.length >= 150, `only ${cases.length} cases`);
  assert.equal(new Set(cases.map((c) => c.id)).size, cases.length, 'duplicate ids');
  const responses = cases.filter((c) => c.mode !== 'answer').length;
  assert.ok(responses >= 0.45 * cases.length, `${responses} responses of ${cases.length}`);
  for (const kind of new Set(cases.map((c) => c.kind))) {
    assert.ok(
      cases.some((c) => c.kind === kind && !c.label),
      `kind ${kind} has no negative control`,
    );
  }
});

test('grade --jsonl agrees with the careful labels on >= 95% of cases, with zero false accepts', (t) => {
  const verdicts = gradeAll();
  const rows = new Map<
    string,
    { n: number; responses: number; agree: number; falseAccept: number; falseReject: number }
  >();
  const falseAccepts: string[] = [];
  const disagreements: string[] = [];
  let batch2 = 0;
  let batch2Agree = 0;
  for (const c of cases) {
    const got = verdicts.get(c.id)?.equivalent;
    const row = rows.get(c.kind) ?? { n: 0, responses: 0, agree: 0, falseAccept: 0, falseReject: 0 };
    rows.set(c.kind, row);
    row.n++;
    if (c.mode !== 'answer') row.responses++;
    if (c.batch === 2) batch2++;
    if (got === c.label) {
      row.agree++;
      if (c.batch === 2) batch2Agree++;
      continue;
    }
    disagreements.push(`${c.id} (${c.note}): label ${c.label}, graded ${got}`);
    if (got) {
      row.falseAccept++;
      falseAccepts.push(c.id);
    } else row.falseReject++;
  }
  const total = [...rows.values()].reduce(
    (a, r) => ({
      n: a.n + r.n,
      responses: a.responses + r.responses,
      agree: a.agree + r.agree,
      falseAccept: a.falseAccept + r.falseAccept,
      falseReject: a.falseReject + r.falseReject,
    }),
    { n: 0, responses: 0, agree: 0, falseAccept: 0, falseReject: 0 },
  );
  const pct = (k: number, n: number): string => `${((100 * k) / n).toFixed(1)}%`;
  const line = (kind: string, r: typeof total): string =>
    `| ${kind} | ${r.n} | ${r.responses} | ${r.agree}/${r.n} (${pct(r.agree, r.n)}) | ${r.falseAccept} | ${r.falseReject} |`;
  const table = [
    '| kind | cases | responses | agree | false accepts | false rejects |',
    '|---|---|---|---|---|---|',
    ...[...rows].map(([kind, r]) => line(kind, r)),
    line('all', total),
  ].join('\n');
  console.log(`${table}\n\ndisagreements:\n${disagreements.join('\n')}`);
  console.log(`batch 2 (written after the first implementation): ${batch2Agree}/${batch2}`);
  t.diagnostic(
    `agreement ${total.agree}/${total.n} = ${pct(total.agree, total.n)}; false accepts ${total.falseAccept}`,
  );
  assert.deepEqual(falseAccepts, [], 'false accepts');
  assert.ok(total.agree / total.n >= 0.95, `agreement ${pct(total.agree, total.n)}:\n${disagreements.join('\n')}`);
});
