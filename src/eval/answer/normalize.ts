/**
 * String-level clean-up of one extracted answer before it is parsed: LaTeX spacing and wrappers,
 * `\dfrac`, `\text{}`, units, `%`, degrees, thousands separators. Only the rules that are safe for every
 * answer live here; anything structural (tuples, `x =`, sets) is left to the parser.
 */
import { replaceCommandGroups } from './scan.ts';

/** Longer answers are not parsed, only compared as strings (keeps the grader's time bounded). */
export const MAX_ANSWER_CHARS = 4000;

const WRAPPERS = ['boxed', 'fbox'];
const TEXT_COMMANDS = [
  'text',
  'textbf',
  'textit',
  'textrm',
  'textup',
  'mbox',
  'mathrm',
  'mathbf',
  'mathit',
  'mathsf',
  'operatorname',
  'hbox',
];

/**
 * Unit words stripped when they trail a number. Multi-letter only: single letters (`m`, `s`) are far more
 * often variables (Qwen's single-letter units turned `(a+5)(b+2)` into `(+5)(b+2)`).
 */
export const UNIT_WORDS = new Set(
  (
    'cm centimeter centimeters centimetre centimetres mm millimeter millimeters km kilometer kilometers meter meters metre metres ' +
    'inch inches foot feet ft yard yards yd mile miles mi in ' +
    'sq square cubic units unit ' +
    'second seconds sec secs minute minutes min mins hour hours hr hrs day days week weeks month months year years yr yrs ' +
    'degree degrees deg radian radians ' +
    'dollar dollars cent cents euro euros pound pounds usd ' +
    'gram grams kg kilogram kilograms mg liter liters litre litres ml gallon gallons ounce ounces oz lb lbs ton tons ' +
    'mph kmh km/h ' +
    'people persons person students times percent pct percentage point points'
  ).split(/\s+/),
);

/** Removes every `\boxed{...}` / `\fbox{...}` wrapper, keeping the content. */
function unwrapBoxes(s: string): string {
  return replaceCommandGroups(s, WRAPPERS, (inner) => unwrapBoxes(inner));
}

function unwrapText(s: string): string {
  return replaceCommandGroups(s, TEXT_COMMANDS, (inner) => unwrapText(inner));
}

/** `\text{ and }` / `\text{or}` between answers means a list. */
function conjunctionsToCommas(s: string): string {
  return replaceCommandGroups(s, TEXT_COMMANDS, (inner) => {
    const word = inner.trim().toLowerCase();
    return word === 'and' || word === 'or' || word === ',' ? ',' : `\\text{${inner}}`;
  });
}

/** Length of a trailing unit power `^2`, `^{2}`, `^3` at the end of `s`, or 0. */
function trailingPowerLength(s: string): number {
  const m = /\^\{?[23]\}?$/.exec(s.slice(-5));
  return m ? m[0].length : 0;
}

const isLetter = (c: string | undefined): boolean => c !== undefined && /[a-zA-Z]/.test(c);

/**
 * Drops a trailing `\text{ cm}^2`-style unit after a non-empty answer. Any trailing text word counts: after a
 * number it is a unit in every dataset we grade, and a text-only answer (`\text{east}`) is never touched.
 */
function dropTrailingTextUnit(s: string): string {
  const body = s.slice(0, s.length - trailingPowerLength(s)).trimEnd();
  if (!body.endsWith('}')) return s;
  let depth = 0;
  let open = -1;
  for (let i = body.length - 1; i >= 0; i--) {
    if (body[i - 1] === '\\') {
      i--;
      continue;
    }
    if (body[i] === '}') depth++;
    else if (body[i] === '{' && --depth === 0) {
      open = i;
      break;
    }
  }
  if (open < 0) return s;
  let nameEnd = open;
  while (nameEnd > 0 && body[nameEnd - 1] === ' ') nameEnd--;
  let nameStart = nameEnd;
  while (isLetter(body[nameStart - 1])) nameStart--;
  if (body[nameStart - 1] !== '\\' || !TEXT_COMMANDS.includes(body.slice(nameStart, nameEnd))) return s;
  const inner = body.slice(open + 1, body.length - 1);
  if (!/^[\sa-zA-Z.]+$/.test(inner) || !/[a-zA-Z]/.test(inner)) return s;
  const head = body.slice(0, nameStart - 1).trimEnd();
  return head === '' ? s : head;
}

/** Drops trailing plain unit words (`18 dollars`, `5 cm^2`) after a digit, `}`, `)` or a space. */
function dropTrailingUnitWords(s: string): string {
  let t = s;
  for (let round = 0; round < 3; round++) {
    let end = t.length;
    if (t[end - 1] === '.') end--;
    end -= trailingPowerLength(t.slice(0, end));
    let start = end;
    while (start > 0 && (isLetter(t[start - 1]) || t[start - 1] === '/')) start--;
    if (start === end || !UNIT_WORDS.has(t.slice(start, end).toLowerCase())) break;
    const before = t[start - 1];
    if (before !== undefined && !/[\d})\s]/.test(before)) break;
    const head = t.slice(0, start).trimEnd();
    if (head === '' || head.endsWith('\\')) break;
    t = head;
  }
  return t;
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/**
 * Removes well-formed thousands separators `1,234,567` that sit outside brackets (so tuples and intervals
 * such as `(0,100)` survive). A comma followed by a space is a list, as in Math-Verify.
 */
export function stripThousandsCommas(s: string): string {
  let out = '';
  let depth = 0;
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    if (depth === 0 && isDigit(c) && !isDigit(s[i - 1]) && s[i - 1] !== '.' && s[i - 1] !== ',') {
      let j = i;
      while (isDigit(s[j])) j++;
      const lead = j - i;
      let k = j;
      let groups = 0;
      while (s[k] === ',' && isDigit(s[k + 1]) && isDigit(s[k + 2]) && isDigit(s[k + 3]) && !isDigit(s[k + 4])) {
        k += 4;
        groups++;
      }
      if (groups > 0 && lead <= 3 && s[k] !== ',' && !(lead > 1 && c === '0')) {
        out += s.slice(i, k).replaceAll(',', '');
        i = k;
        continue;
      }
      out += s.slice(i, j);
      i = j;
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

/** `1 234 567` and `1 000.99` (space-grouped digits, the whole answer) lose their spaces. */
function joinSpaceGroupedDigits(s: string): string {
  return /^-?\d{1,3}( \d{3})+(\.\d+)?$/.test(s) ? s.replaceAll(' ', '') : s;
}

/** `1.000,99` (dots group thousands, so the comma is a decimal comma: no other reading) becomes `1000.99`. */
function europeanNumber(s: string): string {
  return /^[-\u2212]?\d{1,3}(\.\d{3})+,\d+$/.test(s) ? s.replaceAll('.', '').replace(',', '.') : s;
}

const VULGAR: Record<string, string> = {
  '½': '1/2',
  '⅓': '1/3',
  '⅔': '2/3',
  '¼': '1/4',
  '¾': '3/4',
  '⅕': '1/5',
  '⅖': '2/5',
  '⅗': '3/5',
  '⅘': '4/5',
  '⅙': '1/6',
  '⅚': '5/6',
  '⅛': '1/8',
  '⅜': '3/8',
  '⅝': '5/8',
  '⅞': '7/8',
};

/** `½` → `\frac{1}{2}`; after a digit it is a mixed number (`4½` = 4 1/2). */
function vulgarFractions(s: string): string {
  return s.replace(/[½⅓⅔¼¾⅕⅖⅗⅘⅙⅚⅛⅜⅝⅞]/g, (c) => {
    const [a, b] = VULGAR[c].split('/');
    return ` \\frac{${a}}{${b}}`;
  });
}

/** `0.1\overline{6}` (a repeating decimal, the whole answer) as the exact fraction `\frac{15}{90}`. */
function repeatingDecimal(s: string): string {
  const m = /^([-\u2212]?)(\d*)\.(\d*)\\overline\{(\d{1,12})\}$/.exec(s);
  if (!m) return s;
  const [, sign, whole, fixed, repeat] = m;
  const all = BigInt(`${whole}${fixed}${repeat}`);
  const head = BigInt(`${whole}${fixed}` || '0');
  const den = 10n ** BigInt(fixed.length) * (10n ** BigInt(repeat.length) - 1n);
  return `${sign ? '-' : ''}\\frac{${all - head}}{${den}}`;
}

/** `2.5 million` → `2.5\cdot10^{6}` (PRM800K does the same). */
function numberWords(s: string): string {
  const powers: Record<string, number> = { thousand: 3, million: 6, billion: 9, trillion: 12 };
  return s.replace(/(\d)\s*(thousand|million|billion|trillion)\b/gi, (_, d: string, w: string) => {
    return `${d}\\cdot10^{${powers[w.toLowerCase()]}}`;
  });
}

/** Currency signs carry no math meaning; `$` and `\$` are handled with the math delimiters. */
const CURRENCY = /[€£¥₹₩₽¢]|\\(?:euro|pounds|yen)(?![a-zA-Z])/g;

/**
 * Unicode powers: a trailing length unit squared or cubed after a number is a unit (`1,000.99m²`, `42 cm³`);
 * anywhere else `x²` is `x^2` (so `2x²` stays `2x^2`).
 */
function unicodePowers(s: string): string {
  const t = s.replace(/(\d)\s*(?:[kcmd]?m|ft|in|yd|mi)[²³]$/, '$1').trimEnd();
  return t.replaceAll('²', '^2').replaceAll('³', '^3');
}

/** Removes `\left`, `\right` and sizing commands but keeps the delimiter after them (`\left.` vanishes). */
function dropDelimiterSizing(s: string): string {
  return s.replace(/\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|bigg|Bigg)(?![a-zA-Z])\s*(\.)?/g, '');
}

/** The normalised answer string; '' means "no answer". */
export function normalizeAnswer(raw: string): string {
  let s = raw.trim();
  if (s.length > MAX_ANSWER_CHARS) return s;
  s = s.replace(/\r?\n/g, ' ');
  s = unwrapBoxes(s);
  // Math delimiters and currency.
  s = s.replace(/\\\$/g, '').replace(/\$/g, '').replace(CURRENCY, ' ');
  s = vulgarFractions(unicodePowers(numberWords(s)));
  // `\\` (a matrix row break) is matched first and kept, so its second backslash is not read as `\[`.
  s = s.replace(/\\\\|\\\(|\\\)|\\\[|\\\]/g, (m) => (m === '\\\\' ? m : ' '));
  s = s.replace(/\\(?:d|t|c)frac(?![a-zA-Z])/g, '\\frac').replace(/\\dbinom|\\tbinom/g, '\\binom');
  s = dropDelimiterSizing(s);
  // Thousands written with LaTeX spacing: `10,\!080`, `1{,}000`.
  s = s.replace(/(\d)\s*,\\!\s*(?=\d)/g, '$1').replace(/\{,\}/g, '');
  s = s.replace(/\\\\|\\[!,;:> ]|\\q?quad(?![a-zA-Z])|\\displaystyle|\\mathstrut|~/g, (m) => (m === '\\\\' ? m : ' '));
  // Degrees, percent.
  s = s.replace(/\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|°|\\degree(?![a-zA-Z])/g, '');
  s = s.replace(/\\%|%/g, '');
  s = conjunctionsToCommas(s);
  s = s.replace(/\s+/g, ' ').trim();
  // Trailing punctuation left over from prose.
  s = s.replace(/^[:\s]+/, '').replace(/[\s.;,:]+$/, '');
  s = dropTrailingTextUnit(s);
  s = unwrapText(s).replace(/\s+/g, ' ').trim();
  s = s.replace(/(^|\s)(?:and|or)(\s|$)/g, ',').replace(/\s*,\s*,\s*/g, ', ');
  s = dropTrailingUnitWords(s);
  s = s.replace(/[\s.;,:]+$/, '');
  s = repeatingDecimal(europeanNumber(joinSpaceGroupedDigits(s)));
  s = stripThousandsCommas(s);
  return s.trim();
}
