// The links that live in freed memory, and their protection (docs/heap.md,
// "Protecting the links in freed memory").
//
// A freed block's first payload word holds one of the allocator's own pointers:
// the next block of a thread-cache bin or a remote list, or (for a free block of
// the heap) its node in the free index. A program that writes through a dangling
// pointer overwrites exactly that word; taken as it is, the next malloc would hand
// out whatever address the program wrote (memory in its .bss, say) or a block
// that is still in use. So, as glibc's safe-linking does, every such pointer is
// stored mangled:
//
//     stored = pointer XOR (address of the word >> 12) XOR secret
//
// where the secret is drawn at start-up from the kernel's random source, and every
// pointer read back is checked before it is followed: 16-byte aligned, on a page
// the heap owns (PageMap) or in a chunk of index nodes, and agreeing with what it
// points at (a cached block's header says Cached and has the bin's size; a node
// names the very block that pointed to it). An overwritten word demangles to
// garbage that fails these checks; a forged one would need the secret. A failed
// check stops the process with one line naming the call and the freed block whose
// link was overwritten:
//
//     konfiscator: malloc(): corrupted free list (ptr=0x7f3a2c000040)
//
// Keep it: the front end may change (thread caches, runs of one size), but any link
// it keeps in freed memory goes through SetNext/Next (or mangles the same way).

using System.Runtime.CompilerServices;
using Konfiscator.Native.Platform;
using Konfiscator.Stats;

namespace Konfiscator.Native.Heaps
{
    internal static unsafe class FreeLinks
    {
        private static ulong s_secret;

        /// <summary>Draws the secret (start-up, before any block is freed). getrandom(2)
        /// does not allocate; should it fail, addresses and the clock (randomized by ASLR)
        /// stand in.</summary>
        public static void Initialize()
        {
            ulong secret = 0;
            const long SYS_getrandom = 318, GRND_NONBLOCK = 1;
            if (Libc.syscall(SYS_getrandom, &secret, sizeof(ulong), GRND_NONBLOCK, null, null, 0) != sizeof(ulong) || secret == 0)
            {
                ulong x = (ulong)&secret ^ ((ulong)Clock.CoarseMilliseconds() << 20) ^ (ulong)Libc.pthread_self();
                x ^= x >> 31; x *= 0x7FB5D329728EA185; x ^= x >> 27; x *= 0x81DADEF4BC2DD44D; x ^= x >> 33;
                secret = x | 1;
            }
            // The low four bits stay clear, so that a demangled pointer keeps (or loses) its
            // 16-byte alignment exactly as the stored word was (or was not) left alone.
            s_secret = secret & ~15UL;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static ulong Key(void* word) => ((ulong)word >> 12) ^ s_secret;

        // ---- block links: thread-cache bins and remote lists ----

        /// <summary>Stores <paramref name="next"/> (may be null) as cached block b's link.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void SetNext(Block* b, Block* next)
        {
            ulong* word = (ulong*)Blocks.Payload(b);
            *word = (ulong)next ^ Key(word);
        }

        /// <summary>Cached block b's link, checked: null, or an aligned address within the
        /// heap's pages (PageMap.MayContain: two instructions, and an overwritten link
        /// demangles to a random 64-bit value, which lands there with a chance of about
        /// heap size / 2^64). The header of the block it names is checked when that block
        /// is taken (CheckCached).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Block* Next(Block* b, int call)
        {
            Block* next = UncheckedNext(b);
            if (!IsPlausibleNext(next)) Corrupted(call, b);
            return next;
        }

        /// <summary>Cached block b's link, demangled but not checked: for the malloc fast
        /// path, which tests it with IsPlausibleNext and leaves a failure to the slow path
        /// (the slow path takes the same block through Next, which reports it).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Block* UncheckedNext(Block* b)
        {
            ulong* word = (ulong*)Blocks.Payload(b);
            return (Block*)(*word ^ Key(word));
        }

        /// <summary>The test Next makes of a demangled link.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static bool IsPlausibleNext(Block* next) =>
            next == null || (((nuint)next & 15) == 0 && PageMap.MayContain(next));

        /// <summary>A block taken from a bin or a remote list must say Cached (and, for a
        /// bin, have the bin's size).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void CheckCached(Block* b, int call)
        {
            if (b->State != Blocks.Cached) Corrupted(call, b);
        }

        // ---- a free block's pointer to its node in the free index ----

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void SetNode(Block* b, Node* n)
        {
            ulong* word = (ulong*)Blocks.Payload(b);
            *word = (ulong)n ^ Key(word);
        }

        /// <summary>Free block b's node, checked: aligned, in a node chunk, naming b, and b
        /// says Free.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Node* NodeOf(Block* b)
        {
            ulong* word = (ulong*)Blocks.Payload(b);
            Node* n = (Node*)(*word ^ Key(word));
            if (((nuint)n & 15) != 0 || !PageMap.ContainsNode(n) || n->Block != b || b->State != Blocks.Free)
                Corrupted(CurrentCall(), b);
            return n;
        }

        /// <summary>Checks that free block b's link names <paramref name="n"/>, the node the index
        /// found it by (the index's own memory, not freed memory), and that b says Free: the
        /// word is compared with n stored the same way, not followed, so no page lookup is
        /// needed to read it safely. An overwritten word fails exactly as in NodeOf.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void CheckNode(Block* b, Node* n)
        {
            ulong* word = (ulong*)Blocks.Payload(b);
            if (*word != ((ulong)n ^ Key(word)) || b->State != Blocks.Free)
                Corrupted(CurrentCall(), b);
        }

        /// <summary>The node pointer as stored, unchecked (the heap check counts instead of stopping).</summary>
        public static Node* RawNodeOf(Block* b)
        {
            ulong* word = (ulong*)Blocks.Payload(b);
            return (Node*)(*word ^ Key(word));
        }

        // ---- the report ----

        /// <summary>The API call the calling thread is in, for messages (set by the slow
        /// paths in Api/; the malloc fast path passes its own).</summary>
        public static int CurrentCall()
        {
            ThreadCache* tc = Heap.PeekCache();
            return tc != null ? tc->CurrentCall : StatsLayout.MallocCalls;
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Corrupted(int call, Block* b) =>
            Fatal.Misuse(CallName(call), "corrupted free list", Blocks.Payload(b));

        private static string CallName(int call) => call switch
        {
            StatsLayout.FreeCalls => "free",
            StatsLayout.CfreeCalls => "cfree",
            StatsLayout.CallocCalls => "calloc",
            StatsLayout.ReallocCalls => "realloc",
            StatsLayout.ReallocarrayCalls => "reallocarray",
            StatsLayout.MemalignCalls => "memalign",
            StatsLayout.PosixMemalignCalls => "posix_memalign",
            StatsLayout.AlignedAllocCalls => "aligned_alloc",
            StatsLayout.VallocCalls => "valloc",
            StatsLayout.PvallocCalls => "pvalloc",
            StatsLayout.UsableSizeCalls => "malloc_usable_size",
            _ => "malloc",
        };
    }
}
