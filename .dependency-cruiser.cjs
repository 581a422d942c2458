/**
 * The import rule of docs/internals.md, checked by `npm run lint`: no import cycle anywhere, and
 * a room imports only rooms below it (two rooms on one floor never import each other).
 */
const FLOORS = [
  ['core/types.ts', 'migrations/'],
  ['core/errors.ts'],
  ['core/policy/', 'core/base/'],
  ['core/config/'],
  ['core/store/', 'core/definition/'],
  ['core/api/', 'core/worker/'],
  ['core/dashboard/'],
  ['core/index.ts'],
  ['cli/'],
];

const re = (room) => `^${room.replace(/[.]/g, '\\.')}`;

/** For each room: every room on its floor or above (but itself) is out of bounds. */
const roomRules = FLOORS.flatMap((floor, level) =>
  floor.filter(() => level < FLOORS.length - 1).map((room) => ({
    name: `room-order:${room}`,
    comment: `${room} may import only rooms on lower floors (docs/internals.md)`,
    severity: 'error',
    from: { path: re(room) },
    to: { path: FLOORS.slice(level).flat().filter((r) => r !== room).map(re) },
  })),
);

module.exports = {
  forbidden: [
    { name: 'no-circular', comment: 'import cycles hide which side depends on which', severity: 'error', from: {}, to: { circular: true } },
    ...roomRules,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
