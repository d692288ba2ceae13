-- The error of each failed try of an Airflow task, recorded by the task's own failure
-- callback (it runs in the task's process and has the exception). The DAG failure callback
-- runs in the DAG processor, which never sees the exception: it reads the errors here to say
-- in the failed run's report what failed and why.
create table if not exists ops.task_failures (
    dag_id       text        not null,
    run_id       text        not null,
    task_id      text        not null,
    map_index    integer     not null default -1,
    try_number   integer     not null,
    error        text        not null,
    failed_at    timestamptz not null default now(),
    primary key (dag_id, run_id, task_id, map_index, try_number)
);
