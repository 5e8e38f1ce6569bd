# In worker_script.py
import sys
import signal
from gigq_flow import Worker, close_connections

def run_worker(db_path, worker_id=None):
    worker = Worker(db_path, worker_id=worker_id)

    # Handle signals
    def handle_signal(sig, frame):
        print(f"Worker {worker.worker_id} received signal {sig}, stopping...")
        worker.stop()

    signal.signal(signal.SIGINT, handle_signal)
    signal.signal(signal.SIGTERM, handle_signal)

    try:
        worker.start()
    finally:
        # Clean up connections
        worker.close()
        close_connections()

if __name__ == "__main__":
    db_path = sys.argv[1] if len(sys.argv) > 1 else "jobs.db"
    worker_id = sys.argv[2] if len(sys.argv) > 2 else None
    run_worker(db_path, worker_id)
