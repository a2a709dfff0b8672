"""Cookbooks: parent DAGs that trigger child DAGs for the same logical date.

Under a scheduler the parent uses Airflow's TriggerDagRunOperator; without one,
:mod:`.local` runs the children in-process, in order, then the parent's own checks.
"""

VERIFY = "verify"  # the task id of a cookbook's checks (here: naming it imports no operator)
