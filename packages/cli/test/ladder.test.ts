import { describe, expect, it } from 'vitest';
import { formatTime, Ladder, labelOf, renderLadder } from '../src/ladder.ts';

const T = Date.UTC(2026, 10, 25, 12, 0, 1, 4);

describe('ladder renderer (a call flow drawn as sngrep does, RFC 3261 §24.2 example)', () => {
  it('draws one column per address and labelled arrows in both directions', () => {
    const lines = renderLadder(
      [
        { time: T, from: 'A', to: 'B', label: 'INVITE' },
        { time: T + 6, from: 'B', to: 'A', label: '180 Ringing', status: 180 },
        { time: T + 9, from: 'B', to: 'A', label: '200 OK', status: 200 },
        { time: T + 10, from: 'A', to: 'B', label: 'ACK' },
      ],
      { columnWidth: 20 },
    );
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/^\s+A\s+B$/);
    expect(lines[1]).toBe('12:00:01.004           |------INVITE------>|');
    expect(lines[2]).toBe('12:00:01.010           |<---180 Ringing----|');
    expect(lines[3]).toMatch(/\|<-+200 OK-+\|$/);
    expect(lines[4]).toMatch(/\|-+ACK-+>\|$/);
  });

  it('places the lifelines under the names and keeps unrelated columns as plain lifelines', () => {
    const lines = renderLadder([{ time: T, from: 'C', to: 'A', label: 'MESSAGE' }], {
      columns: ['A', 'B', 'C'],
      columnWidth: 16,
    });
    const header = lines[0] as string;
    const arrow = lines[1] as string;
    for (const name of ['A', 'C']) expect(arrow[header.indexOf(name)]).toMatch(/[|<>]/);
    expect(arrow).toMatch(/\|<-+MESSAGE-+\|/);
    // B's lifeline is crossed by the arrow: the label or dashes cover it.
    expect(arrow.split('|').length - 1).toBe(2);
  });

  it('redraws the header when a new address appears in a live trace', () => {
    const l = new Ladder({ columnWidth: 16 });
    const first = l.push({ time: T, from: 'A', to: 'B', label: 'OPTIONS' });
    const second = l.push({ time: T, from: 'B', to: 'A', label: '200 OK', status: 200 });
    const third = l.push({ time: T, from: 'B', to: 'C', label: 'INVITE' });
    expect(first).toHaveLength(2);
    expect(second).toHaveLength(1);
    expect(third).toHaveLength(2);
    expect(third[0]).toMatch(/A\s+B\s+C/);
  });

  it('truncates labels that do not fit, marking the cut with ~', () => {
    const [, line] = renderLadder(
      [{ time: T, from: 'A', to: 'B', label: '481 Call/Transaction Does Not Exist', status: 481 }],
      { columnWidth: 16 },
    );
    expect(line).toContain('~');
    expect(line).toMatch(/\|-+481 Call\/T~->\|/);
  });

  it('colours arrows only when asked: requests cyan, 2xx green, 4xx red', () => {
    const plain = renderLadder([{ time: T, from: 'A', to: 'B', label: 'BYE' }]);
    expect(plain.join('\n')).not.toContain('\x1b[');
    const coloured = renderLadder(
      [
        { time: T, from: 'A', to: 'B', label: 'BYE' },
        { time: T, from: 'B', to: 'A', label: '200 OK', status: 200 },
        { time: T, from: 'B', to: 'A', label: '486 Busy Here', status: 486 },
      ],
      { colour: true },
    );
    expect(coloured[1]).toContain('\x1b[36m');
    expect(coloured[2]).toContain('\x1b[32m');
    expect(coloured[3]).toContain('\x1b[31m');
  });

  it('writes a note (the transport) after the arrow, and a loop beside the lifeline', () => {
    const lines = renderLadder([{ time: T, from: 'A', to: 'A', label: 'OPTIONS', note: 'UDP' }]);
    expect(lines[1]).toMatch(/\|<-- OPTIONS UDP$/);
  });

  it('labels requests by method and responses by status and reason (RFC 3261 §7.1, §7.2)', () => {
    expect(labelOf({ method: 'REGISTER' })).toBe('REGISTER');
    expect(labelOf({ status: 401, reason: 'Unauthorized' })).toBe('401 Unauthorized');
    expect(formatTime(T)).toBe('12:00:01.004');
  });
});
