import threading
from gigq_flow import Worker, close_connections

def worker_thread(db_path):
    worker = Worker(db_path)
    try:
        worker.start()
    except KeyboardInterrupt:
        worker.stop()
    finally:
        # Clean up connections
        worker.close()
        close_connections()

# Start the worker in a background thread
worker_thread = threading.Thread(target=worker_thread, args=("jobs.db",))
worker_thread.daemon = True  # Thread will exit when the main program exits
worker_thread.start()

# Continue with other tasks...
