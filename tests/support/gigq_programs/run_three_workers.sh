# Run 3 workers
python worker_script.py jobs.db worker-1 &
python worker_script.py jobs.db worker-2 &
python worker_script.py jobs.db worker-3 &
