# Issue 8, case 1 as Python met it (test_concurrent_futures with the fork start method):
# threads run and end in the parent, then forked pool workers start threads of their own.
# Prints the sum; a crashed worker makes the pool raise BrokenProcessPool.
import concurrent.futures, multiprocessing, warnings
warnings.simplefilter("ignore", DeprecationWarning)

def threaded_sum(n):
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        return sum(pool.map(lambda i: len(str(i) * 3), range(n)))

if __name__ == "__main__":
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert list(pool.map(str, range(200))) == [str(i) for i in range(200)]
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool:
        print(sum(pool.map(threaded_sum, range(100, 120))))
