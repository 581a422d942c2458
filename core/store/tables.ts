/** The names of bgtasks' tables under a prefix: the one place they are spelled. */
export interface Tables {
  tasks: string;
  completed: string;
  locks: string;
  schedules: string;
  scheduleSlots: string;
  queues: string;
  rateStarts: string;
  workers: string;
  migrations: string;
}

export function tablesFor(prefix: string): Tables {
  return {
    tasks: `${prefix}tasks`,
    completed: `${prefix}completed_tasks`,
    locks: `${prefix}locks`,
    schedules: `${prefix}schedules`,
    scheduleSlots: `${prefix}schedule_slots`,
    queues: `${prefix}queues`,
    rateStarts: `${prefix}rate_starts`,
    workers: `${prefix}workers`,
    migrations: `${prefix}migrations`,
  };
}
