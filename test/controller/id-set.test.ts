import test from 'ava';
import { IdSet } from '../../src/controller/id-set.js';
import { randomInt, seededRandom } from './random.js';

test('IdSet behaves like a Set of ids 0..255 (random operations against a Set)', (t) => {
  const random = seededRandom(7);
  for (let round = 0; round < 50; round++) {
    const ids = IdSet.of([]);
    const set = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const id = randomInt(random, 0, 255);
      if (random() < 0.6) {
        ids.add(id);
        set.add(id);
      } else {
        t.is(ids.delete(id), set.delete(id));
      }
    }
    t.deepEqual([...ids], [...set].sort((a, b) => a - b), 'iterates ascending');
    t.is(ids.size, set.size);
    for (const id of [-1, 0, 31, 32, 255, 256, 1.5]) t.is(ids.has(id), set.has(id));
    const copy = ids.copy();
    copy.add(0).add(255);
    t.is(ids.has(0), set.has(0), 'a copy does not share words with its original');
    const other = IdSet.of([...set].filter((x) => x % 3 === 0).concat([1, 2]));
    const expected = new Set([...set, ...other].filter((x) => set.has(x) !== other.has(x))).size;
    t.is(ids.differences(other), expected);
  }
  t.throws(() => IdSet.of([256]), { instanceOf: RangeError });
});
