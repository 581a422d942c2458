import { expect } from 'chai';
import { ValidationError } from '../../core/errors.js';
import { checkCron } from '../../core/policy/cron-check.js';
import { cronSlotsBetween, nextCronSlot } from '../../core/policy/cron.js';

// Expectations are written as UTC instants, worked out by hand from the zones' rules:
// Europe/Berlin 2026-03-29 01:00Z CET (+1) -> CEST (+2), 2026-10-25 01:00Z CEST -> CET;
// America/New_York 2026-03-08 07:00Z EST (-5) -> EDT (-4), 2026-11-01 06:00Z EDT -> EST.
const BERLIN = 'Europe/Berlin';
const NEW_YORK = 'America/New_York';
const MINUTE_MS = 60_000;

const ms = (iso: string): number => Date.parse(iso);
const iso = (t: number): string => new Date(t).toISOString();

/** Slots walked one nextCronSlot call at a time, as successive recurring tasks would. */
function walk(expression: string, zone: string, fromIso: string, untilIso: string): string[] {
  const out: string[] = [];
  for (let t = nextCronSlot(expression, zone, ms(fromIso)); t <= ms(untilIso); t = nextCronSlot(expression, zone, t)) out.push(iso(t));
  return out;
}

function everyMinutes(step: number, fromIso: string, untilIso: string): string[] {
  const out: string[] = [];
  for (let t = ms(fromIso) + step * MINUTE_MS; t <= ms(untilIso); t += step * MINUTE_MS) out.push(iso(t));
  return out;
}

describe('cron slots', () => {
  describe('plain slots', () => {
    it('returns the first UTC slot strictly after the given instant', () => {
      expect(iso(nextCronSlot('*/15 * * * *', 'UTC', ms('2026-05-04T10:07:30Z')))).to.equal('2026-05-04T10:15:00.000Z');
      expect(iso(nextCronSlot('*/15 * * * *', 'UTC', ms('2026-05-04T10:15:00Z')))).to.equal('2026-05-04T10:30:00.000Z');
      expect(iso(nextCronSlot('0 9 * * 1', 'UTC', ms('2026-05-04T09:00:00Z')))).to.equal('2026-05-11T09:00:00.000Z');
    });

    it('reads a 6-field expression with seconds first', () => {
      expect(iso(nextCronSlot('*/20 * * * * *', 'UTC', ms('2026-05-04T10:00:05.500Z')))).to.equal('2026-05-04T10:00:20.000Z');
      expect(iso(nextCronSlot('30 0 9 * * *', 'UTC', ms('2026-05-04T09:00:30Z')))).to.equal('2026-05-05T09:00:30.000Z');
    });

    it('computes wall-clock times in the given zone, not the process zone', () => {
      expect(iso(nextCronSlot('0 9 * * *', 'Asia/Tokyo', ms('2026-05-04T00:00:00Z')))).to.equal('2026-05-05T00:00:00.000Z');
      expect(iso(nextCronSlot('0 9 * * *', BERLIN, ms('2026-05-04T00:00:00Z')))).to.equal('2026-05-04T07:00:00.000Z');
    });

    it('treats 6-field seconds slots the same way around a clock change', () => {
      // 02:30:15 does not exist on 2026-03-29 in Berlin: it runs at the gap end.
      expect(iso(nextCronSlot('15 30 2 * * *', BERLIN, ms('2026-03-28T12:00:00Z')))).to.equal('2026-03-29T01:00:00.000Z');
    });
  });

  describe('fixed-time jobs around spring forward', () => {
    it('runs a time inside the Berlin gap at the gap end, then normally the next day', () => {
      expect(walk('30 2 * * *', BERLIN, '2026-03-28T12:00:00Z', '2026-03-30T12:00:00Z')).to.deep.equal([
        '2026-03-29T01:00:00.000Z',
        '2026-03-30T00:30:00.000Z',
      ]);
      expect(iso(nextCronSlot('0 2 * * *', BERLIN, ms('2026-03-28T12:00:00Z')))).to.equal('2026-03-29T01:00:00.000Z');
    });

    it('runs a time inside the New York gap at the gap end', () => {
      expect(iso(nextCronSlot('30 2 * * *', NEW_YORK, ms('2026-03-07T12:00:00Z')))).to.equal('2026-03-08T07:00:00.000Z');
      expect(iso(nextCronSlot('0 2 * * *', NEW_YORK, ms('2026-03-07T12:00:00Z')))).to.equal('2026-03-08T07:00:00.000Z');
    });

    it('runs several matching times inside one gap once, together, at the gap end', () => {
      expect(walk('0,30 2 * * *', BERLIN, '2026-03-28T12:00:00Z', '2026-03-30T12:00:00Z')).to.deep.equal([
        '2026-03-29T01:00:00.000Z',
        '2026-03-30T00:00:00.000Z',
        '2026-03-30T00:30:00.000Z',
      ]);
    });

    it('merges a gap time with the matching time at the gap end into one run', () => {
      expect(walk('0 2,3 * * *', BERLIN, '2026-03-28T12:00:00Z', '2026-03-29T12:00:00Z')).to.deep.equal(['2026-03-29T01:00:00.000Z']);
    });

    it('treats a fixed hour with a wildcard minute as fixed-time', () => {
      expect(walk('*/20 2 * * *', BERLIN, '2026-03-28T12:00:00Z', '2026-03-30T00:30:00Z')).to.deep.equal([
        '2026-03-29T01:00:00.000Z',
        '2026-03-30T00:00:00.000Z',
        '2026-03-30T00:20:00.000Z',
      ]);
    });
  });

  describe('fixed-time jobs around fall back', () => {
    it('runs a time inside the Berlin overlap once, at its first occurrence', () => {
      expect(walk('30 2 * * *', BERLIN, '2026-10-24T12:00:00Z', '2026-10-26T12:00:00Z')).to.deep.equal([
        '2026-10-25T00:30:00.000Z',
        '2026-10-26T01:30:00.000Z',
      ]);
    });

    it('runs 01:30 in New York once on the fall-back day', () => {
      expect(walk('30 1 * * *', NEW_YORK, '2026-10-31T12:00:00Z', '2026-11-02T12:00:00Z')).to.deep.equal([
        '2026-11-01T05:30:00.000Z',
        '2026-11-02T06:30:00.000Z',
      ]);
    });

    it('does not run an overlap time again when asked from inside the repeated hour', () => {
      // 06:15Z is 01:15 EST, the second 01:15 of the night; 01:30 EDT already ran at 05:30Z.
      expect(iso(nextCronSlot('30 1 * * *', NEW_YORK, ms('2026-11-01T06:15:00Z')))).to.equal('2026-11-02T06:30:00.000Z');
      // 01:15Z is 02:15 CET in Berlin; 03:00 has not been shown yet and runs at 03:00 CET.
      expect(iso(nextCronSlot('0 3 * * *', BERLIN, ms('2026-10-25T01:15:00Z')))).to.equal('2026-10-25T02:00:00.000Z');
    });

    it('runs a time just after the overlap once', () => {
      expect(iso(nextCronSlot('0 2 * * *', NEW_YORK, ms('2026-10-31T12:00:00Z')))).to.equal('2026-11-01T07:00:00.000Z');
      expect(iso(nextCronSlot('0 2 * * *', NEW_YORK, ms('2026-11-01T07:00:00Z')))).to.equal('2026-11-02T07:00:00.000Z');
    });
  });

  describe('wildcard-hour jobs follow elapsed time', () => {
    it('runs 0 * * * * every real hour across the Berlin fall back, 02:00 twice', () => {
      expect(walk('0 * * * *', BERLIN, '2026-10-24T23:30:00Z', '2026-10-25T02:00:00Z')).to.deep.equal([
        '2026-10-25T00:00:00.000Z',
        '2026-10-25T01:00:00.000Z',
        '2026-10-25T02:00:00.000Z',
      ]);
    });

    it('runs 0 * * * * every real hour across the Berlin spring forward', () => {
      expect(walk('0 * * * *', BERLIN, '2026-03-28T23:30:00Z', '2026-03-29T01:00:00Z')).to.deep.equal([
        '2026-03-29T00:00:00.000Z',
        '2026-03-29T01:00:00.000Z',
      ]);
    });

    it('runs 0 * * * * every real hour across both New York changes', () => {
      expect(walk('0 * * * *', NEW_YORK, '2026-11-01T04:30:00Z', '2026-11-01T07:00:00Z')).to.deep.equal(everyMinutes(60, '2026-11-01T04:00:00Z', '2026-11-01T07:00:00Z'));
      expect(walk('0 * * * *', NEW_YORK, '2026-03-08T05:30:00Z', '2026-03-08T08:00:00Z')).to.deep.equal(everyMinutes(60, '2026-03-08T05:00:00Z', '2026-03-08T08:00:00Z'));
    });

    it('runs */15 * * * * every 15 real minutes across a change', () => {
      expect(walk('*/15 * * * *', BERLIN, '2026-03-29T00:30:00Z', '2026-03-29T01:15:00Z')).to.deep.equal([
        '2026-03-29T00:45:00.000Z',
        '2026-03-29T01:00:00.000Z',
        '2026-03-29T01:15:00.000Z',
      ]);
    });

    it('runs 30 */2 * * * whenever the clock reads an even hour and half', () => {
      // Fall back: 02:30 is shown twice (CEST, then CET), so it runs twice.
      expect(walk('30 */2 * * *', BERLIN, '2026-10-24T21:00:00Z', '2026-10-25T04:00:00Z')).to.deep.equal([
        '2026-10-24T22:30:00.000Z',
        '2026-10-25T00:30:00.000Z',
        '2026-10-25T01:30:00.000Z',
        '2026-10-25T03:30:00.000Z',
      ]);
      // Spring forward: 02:30 is never shown, and 03:30 is an odd hour.
      expect(walk('30 */2 * * *', BERLIN, '2026-03-28T22:00:00Z', '2026-03-29T03:00:00Z')).to.deep.equal([
        '2026-03-28T23:30:00.000Z',
        '2026-03-29T02:30:00.000Z',
      ]);
    });
  });

  describe('48-hour walks across each change', () => {
    // 01:00 to 03:30 local every half hour, on each of the two local days of the window.
    const FIXED = '0,30 1-3 * * *';

    it('walks a fixed-time job across the Berlin spring forward', () => {
      expect(walk(FIXED, BERLIN, '2026-03-27T23:00:00Z', '2026-03-29T23:00:00Z')).to.deep.equal([
        ...['00:00', '00:30', '01:00', '01:30', '02:00', '02:30'].map((t) => `2026-03-28T${t}:00.000Z`),
        // 01:00, 01:30 CET; 02:00, 02:30 (gap) and 03:00 CEST at the gap end; 03:30 CEST.
        ...['00:00', '00:30', '01:00', '01:30'].map((t) => `2026-03-29T${t}:00.000Z`),
        '2026-03-29T23:00:00.000Z',
      ]);
    });

    it('walks a fixed-time job across the Berlin fall back', () => {
      expect(walk(FIXED, BERLIN, '2026-10-23T22:00:00Z', '2026-10-25T22:00:00Z')).to.deep.equal([
        ...['2026-10-23T23:00', '2026-10-23T23:30', '2026-10-24T00:00', '2026-10-24T00:30', '2026-10-24T01:00', '2026-10-24T01:30'],
        // 01:00 to 02:30 CEST; the repeated 02:00 and 02:30 CET do not run; 03:00, 03:30 CET.
        ...['2026-10-24T23:00', '2026-10-24T23:30', '2026-10-25T00:00', '2026-10-25T00:30', '2026-10-25T02:00', '2026-10-25T02:30'],
      ].map((t) => `${t}:00.000Z`));
    });

    it('walks a fixed-time job across the New York spring forward', () => {
      expect(walk(FIXED, NEW_YORK, '2026-03-07T05:00:00Z', '2026-03-09T05:00:00Z')).to.deep.equal([
        ...['06:00', '06:30', '07:00', '07:30', '08:00', '08:30'].map((t) => `2026-03-07T${t}:00.000Z`),
        ...['06:00', '06:30', '07:00', '07:30'].map((t) => `2026-03-08T${t}:00.000Z`),
        '2026-03-09T05:00:00.000Z',
      ]);
    });

    it('walks a fixed-time job across the New York fall back', () => {
      expect(walk(FIXED, NEW_YORK, '2026-10-31T04:00:00Z', '2026-11-02T04:00:00Z')).to.deep.equal([
        ...['05:00', '05:30', '06:00', '06:30', '07:00', '07:30'].map((t) => `2026-10-31T${t}:00.000Z`),
        // 01:00, 01:30 EDT; the repeated 01:00 and 01:30 EST do not run; 02:00 to 03:30 EST.
        ...['05:00', '05:30', '07:00', '07:30', '08:00', '08:30'].map((t) => `2026-11-01T${t}:00.000Z`),
      ]);
    });

    for (const [zone, fromIso, untilIso] of [
      [BERLIN, '2026-03-27T23:00:00Z', '2026-03-29T23:00:00Z'],
      [BERLIN, '2026-10-23T22:00:00Z', '2026-10-25T22:00:00Z'],
      [NEW_YORK, '2026-03-07T05:00:00Z', '2026-03-09T05:00:00Z'],
      [NEW_YORK, '2026-10-31T04:00:00Z', '2026-11-02T04:00:00Z'],
    ]) {
      it(`walks */15 * * * * every 15 real minutes in ${zone} from ${fromIso}`, () => {
        // Both zones' offsets are whole hours, so the expected slots are every 15 minutes of UTC.
        expect(walk('*/15 * * * *', zone, fromIso, untilIso)).to.deep.equal(everyMinutes(15, fromIso, untilIso));
      });
    }
  });

  describe('cronSlotsBetween', () => {
    it('returns the slots after the start and up to and including the end, ascending', () => {
      expect(cronSlotsBetween('0 * * * *', 'UTC', ms('2026-05-04T00:00:00Z'), ms('2026-05-04T03:00:00Z'), 10).map(iso)).to.deep.equal([
        '2026-05-04T01:00:00.000Z',
        '2026-05-04T02:00:00.000Z',
        '2026-05-04T03:00:00.000Z',
      ]);
    });

    it('stops at the limit, keeping the earliest slots', () => {
      expect(cronSlotsBetween('0 * * * *', 'UTC', ms('2026-05-04T00:00:00Z'), ms('2026-05-05T00:00:00Z'), 2).map(iso)).to.deep.equal([
        '2026-05-04T01:00:00.000Z',
        '2026-05-04T02:00:00.000Z',
      ]);
      expect(cronSlotsBetween('0 * * * *', 'UTC', ms('2026-05-04T00:00:00Z'), ms('2026-05-05T00:00:00Z'), 0)).to.deep.equal([]);
    });

    it('returns nothing when no slot falls in the range', () => {
      expect(cronSlotsBetween('0 * * * *', 'UTC', ms('2026-05-04T00:00:00Z'), ms('2026-05-04T00:59:59Z'), 10)).to.deep.equal([]);
      expect(cronSlotsBetween('0 * * * *', 'UTC', ms('2026-05-04T05:00:00Z'), ms('2026-05-04T00:00:00Z'), 10)).to.deep.equal([]);
    });

    it('catches up across a clock change with each slot once', () => {
      expect(cronSlotsBetween('30 */2 * * *', BERLIN, ms('2026-10-24T21:00:00Z'), ms('2026-10-25T04:00:00Z'), 10).map(iso)).to.deep.equal(
        walk('30 */2 * * *', BERLIN, '2026-10-24T21:00:00Z', '2026-10-25T04:00:00Z'),
      );
      expect(cronSlotsBetween('0,30 2 * * *', BERLIN, ms('2026-03-28T12:00:00Z'), ms('2026-03-29T12:00:00Z'), 10).map(iso)).to.deep.equal([
        '2026-03-29T01:00:00.000Z',
      ]);
    });
  });

  describe('checkCron', () => {
    function rejection(expression: string): ValidationError {
      try {
        checkCron(expression, 'repeat');
      } catch (err) {
        expect(err).to.be.instanceOf(ValidationError);
        return err as ValidationError;
      }
      throw new Error(`checkCron accepted ${JSON.stringify(expression)}`);
    }

    it('accepts 5- and 6-field expressions', () => {
      for (const ok of ['*/5 * * * *', '0 30 9 * * 1-5', '0 9 * * MON-FRI', '0 0 * * THU', '0 0 L * *']) {
        expect(() => checkCron(ok, 'repeat'), ok).not.to.throw();
      }
    });

    it('rejects an out-of-range value, naming the label and the parser reason', () => {
      const err = rejection('61 * * * *');
      expect(err.message).to.contain('Invalid repeat: "61 * * * *"');
      expect(err.message).to.contain('got value 61 expected range 0-59');
      expect(err.message).to.contain('expected a cron expression with 5 fields (minute hour day month weekday) or 6 (with seconds first)');
    });

    it('rejects too few fields, which cron-parser would pad', () => {
      expect(rejection('* * *').message).to.contain('it has 3 fields');
    });

    it('rejects a 7-field expression with a year', () => {
      expect(rejection('0 0 0 1 1 * 2026').message).to.contain('it has 7 fields');
    });

    it('rejects an empty expression, which cron-parser reads as every minute', () => {
      expect(rejection('').message).to.match(/^Invalid repeat: "" — it has 0 fields;/);
      expect(rejection('   ').message).to.contain('it has 0 fields');
    });

    it('rejects hashed values, whose slots would differ between processes', () => {
      expect(rejection('H * * * *').message).to.contain('hashed values (H) are not supported');
    });
  });
});
