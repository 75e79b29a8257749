/**
 * Seeded text generator for synthetic training speech: random English sentences built from a
 * built-in vocabulary (common words chosen to cover every English phoneme, with plenty of bilabials,
 * rounded and open vowels), simple templates, numbers, questions and lists, so the phoneme statistics
 * resemble conversational speech. Deterministic for a given seed.
 */

import { mulberry32 } from '../../random.ts';

/** mulberry32: small, fast, seedable PRNG returning [0, 1) */
export const rng = mulberry32;

export function pick<T>(r: () => number, a: readonly T[]): T {
  return a[Math.floor(r() * a.length) % a.length];
}

const NOUNS = `people time year way day man woman child world life hand part place case week company system
program question work government number night point home water room mother area money story fact month
lot right study book eye job word business issue side kind head house service friend father power hour
game line end member law car city community name president team minute idea kid body information back
parent face others level office door health person art war history party result change morning reason
research girl guy moment air teacher force education foot boy age policy music market sense nation plan
college interest death experience effect class control care field development role effort rate heart drug
show leader light voice wife police mind price report decision son view relationship town road arm
difference value building action model season society tax director position player record paper space
ground form event official matter center couple site project activity star table need court oil situation
cost industry figure street image phone data picture practice piece land product doctor wall patient
worker news test movie north love support technology step baby computer type attention film tree source
organization hair window evidence population site truth bag box bread coffee pizza moon mouse ball boat
bubble bottle pepper puppy map mop bump bomb beam pool spoon shoe zoo blue juice rope soap boot wolf
wool foam yellow chair church judge bridge page edge fish dish wish shop ship sheep cheese beach peach
thought theory thumb thing path bath month earth feather weather brother mother leather rhythm`.split(/\s+/).filter(Boolean);

const VERBS = `be have do say go get make know think take see come want look use find give tell work call try ask
need feel become leave put mean keep let begin seem help talk turn start show hear play run move like live
believe hold bring happen write provide sit stand lose pay meet include continue set learn change lead
understand watch follow stop create speak read allow add spend grow open walk win offer remember love
consider appear buy wait serve die send expect build stay fall cut reach kill remain suggest raise pass
sell require report decide pull push bump pop mop bob blow boil borrow bounce move choose judge wash
throw breathe smooth soothe chew shout whisper murmur mumble wobble paddle bubble`.split(/\s+/).filter(Boolean);

const ADJ = `good new first last long great little own other old right big high different small large next
early young important few public bad same able blue broad bright cheap calm cool deep easy flat happy
huge loud open pale proud quick quiet round rough smooth soft sharp thick thin warm wide wise yellow
purple orange brown awful amazing obvious beautiful possible probably`.split(/\s+/).filter(Boolean);

const FUNC = `the a an of to in for on with at by from up about into over after the the a of and but or so
because if when while then just very really maybe perhaps also only even still always never often`.split(/\s+/).filter(Boolean);

const PRON = ['I', 'you', 'we', 'they', 'he', 'she', 'it', 'my friend', 'our team', 'the doctor', 'your mother', 'nobody', 'everyone', 'Bob', 'Mary', 'Paul', 'Emma', 'Mr. Brown', 'Ms. Moore', 'Peter', 'Maria', 'Oliver', 'Sophia', 'Jim', 'Sue'];

const PHRASES = [
  'how are you doing today', 'can you hear me now', 'let me share my screen', 'I think we should move on',
  'sorry, you were on mute', 'could you repeat that please', 'that sounds good to me', 'see you next week',
  'what do you think about it', 'good morning everyone', 'thank you so much', 'okay, bye bye',
  'oh wow, that is amazing', 'yeah, absolutely', 'um, I am not sure', 'hmm, let me check', 'we will see',
  'please open the window', 'the boat floats on the pool', 'bob bought a blue bubble pipe',
  'papa made more maple muffins', 'who knew the moon was blue', 'a big brown box of pepper',
  'my mom makes ham and jam', 'food for you and your group', 'she sells sea shells by the sea shore',
  'the thin thief thought three thoughts', 'choose the cheap cheese chips', 'judge the huge orange gem',
  'measure the beige treasure', 'row, row, row your boat', 'I owe you a yellow yo yo',
];

const NUMBERS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'twenty', 'thirty', 'fifty', 'ninety', 'a hundred', 'a thousand'];

function np(r: () => number): string {
  const k = r();
  if (k < 0.25) return pick(r, PRON);
  const det = pick(r, ['the', 'a', 'my', 'your', 'this', 'that', 'our', 'some', 'every']);
  const adj = r() < 0.4 ? `${pick(r, ADJ)} ` : '';
  return `${det} ${adj}${pick(r, NOUNS)}`;
}

function clause(r: () => number): string {
  const k = r();
  if (k < 0.45) return `${np(r)} ${pick(r, VERBS)}s ${np(r)}`;
  if (k < 0.6) return `${pick(r, PRON)} ${pick(r, ['will', 'can', 'should', 'might', 'must', 'would', 'did not', 'do not'])} ${pick(r, VERBS)} ${np(r)} ${pick(r, FUNC)} ${np(r)}`;
  if (k < 0.7) return `${np(r)} is ${pick(r, ['very', 'so', 'too', 'not', 'really', 'quite'])} ${pick(r, ADJ)}`;
  if (k < 0.8) return `${pick(r, ['why', 'how', 'when', 'where', 'what', 'who'])} ${pick(r, ['did', 'does', 'will', 'can', 'should'])} ${np(r)} ${pick(r, VERBS)}`;
  if (k < 0.88) return `${pick(r, NUMBERS)} ${pick(r, NOUNS)}s and ${pick(r, NUMBERS)} ${pick(r, NOUNS)}s`;
  // word salad: random words, covers odd phoneme sequences
  const n = 3 + Math.floor(r() * 6);
  const ws: string[] = [];
  for (let i = 0; i < n; i++) ws.push(pick(r, pick(r, [NOUNS, VERBS, ADJ, FUNC])));
  return ws.join(' ');
}

/** One utterance: 1–3 sentences, sometimes a stock phrase, with punctuation (pauses). */
export function sentence(r: () => number): string {
  const parts: string[] = [];
  const ns = 1 + Math.floor(r() * r() * 3);
  for (let s = 0; s < ns; s++) {
    let text = r() < 0.25 ? pick(r, PHRASES) : clause(r);
    if (r() < 0.3) text += `, ${r() < 0.5 ? pick(r, ['and', 'but', 'so', 'because', 'then']) + ' ' : ''}${clause(r)}`;
    const end = r() < 0.2 ? '?' : r() < 0.1 ? '!' : '.';
    parts.push(text.charAt(0).toUpperCase() + text.slice(1) + end);
  }
  return parts.join(' ');
}
