// The viewer's client: the problem list with its filters and keyboard navigation, the traces of the
// chosen problem side by side, and the tooltip of a steered token (hover or keyboard focus).
// Everything comes from this server (/api/problems, /api/problem); text is set as text, never as HTML.
const PALETTE = [
  '#aec7e8',
  '#ffbb78',
  '#98df8a',
  '#ff9896',
  '#c5b0d5',
  '#c49c94',
  '#f7b6d2',
  '#dbdb8d',
  '#9edae5',
  '#d9d9d9',
];

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'style') Object.assign(e.style, v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

const state = { runs: [], problems: [], shown: [], selected: -1, colours: new Map() };
const $ = (id) => document.getElementById(id);

function verdictMark(cell) {
  if (!cell) return el('span', { class: 'none', text: '·', title: 'no sample' });
  if (cell.correct === true) return el('span', { class: 'ok', text: '✓', title: 'correct' });
  if (cell.correct === false) return el('span', { class: 'bad', text: '✗', title: 'incorrect' });
  return el('span', { class: 'none', text: '?', title: 'not graded' });
}

function colour(category) {
  if (!state.colours.has(category)) state.colours.set(category, PALETTE[state.colours.size % PALETTE.length]);
  return state.colours.get(category);
}

const visibleRuns = () =>
  [...$('show-systems').querySelectorAll('input')].filter((i) => i.checked).map((i) => Number(i.value));

function applyFilters() {
  const verdict = $('verdict').value;
  const run = Number($('verdict-run').value);
  const category = $('category').value;
  state.shown = state.problems.filter((p) => {
    const cell = p.systems[run];
    if (verdict === 'correct' && cell?.correct !== true) return false;
    if (verdict === 'incorrect' && cell?.correct !== false) return false;
    return !category || p.categories.includes(category);
  });
  const list = $('problems');
  list.replaceChildren(
    ...state.shown.map((p, i) =>
      el(
        'li',
        { role: 'option', id: `p-${i}`, 'data-id': p.id, 'aria-selected': 'false' },
        el('span', { class: 'pid', text: p.id }),
        el('span', { class: 'marks' }, ...visibleRuns().map((k) => verdictMark(p.systems[k]))),
      ),
    ),
  );
  $('count').textContent = `${state.shown.length} of ${state.problems.length} problems`;
  state.selected = -1;
  if (state.shown.length) select(0);
  else $('trace').replaceChildren(el('p', { class: 'sub', text: 'No problem matches the filters.' }));
}

async function select(i) {
  if (i < 0 || i >= state.shown.length) return;
  const list = $('problems');
  list.querySelector('[aria-selected=true]')?.setAttribute('aria-selected', 'false');
  state.selected = i;
  const li = $(`p-${i}`);
  li.setAttribute('aria-selected', 'true');
  list.setAttribute('aria-activedescendant', li.id);
  li.scrollIntoView({ block: 'nearest' });
  const id = state.shown[i].id;
  const res = await fetch(`/api/problem?id=${encodeURIComponent(id)}`);
  if (state.selected !== i) return; // another problem was chosen meanwhile
  renderTrace(await res.json());
}

function tokenSpan(t, run, i) {
  if (!t.steered) return document.createTextNode(t.text);
  const category = t.title ?? `latent ${t.latent ?? '?'}`;
  return el('span', {
    class: 'tok steered',
    tabindex: 0,
    'data-run': run,
    'data-i': i,
    'data-category': category,
    'aria-label': `steered: ${category}`,
    text: t.text,
    style: { background: colour(category) },
  });
}

function renderTrace(p) {
  const runs = visibleRuns();
  const columns = runs.map((k) => {
    const run = state.runs[k];
    const cell = p.systems[k];
    const head = el(
      'h3',
      {},
      `${run.name} `,
      el('span', { class: 'sub', text: run.role ? `(${run.role}) ` : '' }),
      verdictMark(cell),
    );
    if (!cell)
      return el('section', { class: 'system', 'data-run': k }, head, el('p', { class: 'sub', text: 'no sample' }));
    const stats = el('p', {
      class: 'sub stats',
      text: `${cell.length ?? '?'} tokens${cell.steered !== null ? `, ${cell.steered} steered` : ''}${cell.finishReason ? `, ${cell.finishReason}` : ''}`,
    });
    const text = el('div', { class: 'text' });
    if (cell.trace) text.append(...cell.trace.map((t, i) => tokenSpan(t, k, i)));
    else text.textContent = cell.text;
    return el('section', { class: 'system', 'data-run': k }, head, stats, text);
  });
  const categories = [
    ...new Set(
      runs.flatMap((k) =>
        (p.systems[k]?.trace ?? []).filter((t) => t.steered).map((t) => t.title ?? `latent ${t.latent ?? '?'}`),
      ),
    ),
  ];
  const legend = categories.length
    ? el(
        'p',
        { class: 'legend' },
        'steered: ',
        ...categories.map((c) => el('span', { text: c, style: { background: colour(c) } })),
      )
    : null;
  $('trace').replaceChildren(
    el('h2', { text: p.id }),
    el('div', { class: 'question', text: p.question }),
    el('p', {}, 'gold answer: ', el('code', { text: p.answer })),
    legend,
    el('div', { class: 'columns' }, ...columns),
  );
  state.trace = p;
}

function fmt(x, digits = 2) {
  return x === null || x === undefined ? '−∞' : Number(x).toFixed(digits);
}

function showTip(span) {
  const t = state.trace?.systems[Number(span.dataset.run)]?.trace?.[Number(span.dataset.i)];
  if (!t) return;
  const tip = $('tip');
  const rows = (t.candidates ?? []).map((c, j) =>
    el(
      'tr',
      { class: j === t.chosen ? 'chosen' : undefined },
      el('td', { class: 'l', text: JSON.stringify(c.text) }),
      el('td', { text: fmt(c.coefficient, 2) }),
      el('td', { text: String(c.window) }),
      el('td', { text: fmt(c.logp, 3) }),
    ),
  );
  tip.replaceChildren(
    el('div', {}, el('b', { class: 'tip-title', text: t.title ?? 'no title' }), ` latent ${t.latent ?? '?'}`),
    el(
      'div',
      { class: 'tip-cell' },
      `coefficient ${t.coefficient ?? '–'} · window ${t.window ?? '–'}${t.vector ? ` · ${t.vector}` : ''}`,
    ),
    el(
      'div',
      { class: 'tip-base' },
      `base model said ${JSON.stringify(t.baseText ?? '?')}, emitted ${JSON.stringify(t.text)}`,
    ),
    rows.length
      ? el(
          'table',
          { class: 'candidates' },
          el(
            'thead',
            {},
            el('tr', {}, ...['candidate', 'c', 'window', 'thinking log p'].map((h) => el('th', { text: h }))),
          ),
          el('tbody', {}, ...rows),
        )
      : null,
  );
  tip.hidden = false;
  const r = span.getBoundingClientRect();
  tip.style.left = `${Math.max(4, Math.min(window.scrollX + r.left, window.scrollX + document.documentElement.clientWidth - tip.offsetWidth - 4))}px`;
  tip.style.top = `${window.scrollY + r.bottom + 6}px`;
}

function hideTip() {
  $('tip').hidden = true;
}

async function start() {
  const data = await (await fetch('/api/problems')).json();
  state.runs = data.runs;
  state.problems = data.problems;
  const hybrid = data.runs.findIndex((r) => r.role === 'hybrid');
  $('verdict-run').replaceChildren(
    ...data.runs.map((r, k) => el('option', { value: k, text: r.name, selected: k === (hybrid < 0 ? 0 : hybrid) })),
  );
  const categories = [...new Set(data.problems.flatMap((p) => p.categories))].sort();
  $('category').append(...categories.map((c) => el('option', { value: c, text: c })));
  $('show-systems').append(
    ...data.runs.map((r, k) =>
      el('label', {}, el('input', { type: 'checkbox', value: k, checked: true, name: 'system' }), ` ${r.name}`),
    ),
  );
  $('filters').addEventListener('change', applyFilters);
  const list = $('problems');
  list.addEventListener('click', (e) => {
    const li = e.target.closest('li');
    if (li) select(Number(li.id.slice(2)));
  });
  list.addEventListener('keydown', (e) => {
    const step = { ArrowDown: 1, j: 1, ArrowUp: -1, k: -1, Home: -Infinity, End: Infinity }[e.key];
    if (step === undefined) return;
    e.preventDefault();
    select(Math.max(0, Math.min(state.shown.length - 1, state.selected + step)));
  });
  const trace = $('trace');
  for (const [type, fn] of [
    ['mouseover', showTip],
    ['focusin', showTip],
  ]) {
    trace.addEventListener(type, (e) => {
      const span = e.target.closest?.('.tok.steered');
      if (span) fn(span);
    });
  }
  trace.addEventListener('mouseout', (e) => {
    if (e.target.closest?.('.tok.steered')) hideTip();
  });
  trace.addEventListener('focusout', hideTip);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') hideTip();
  });
  applyFilters();
}

start();
